"""Runs whose steps execute on Celery workers (deploy/celery/README.md; `pip install pagorecon[celery]`).

One module for both sides, so they cannot disagree on the broker or the queue:
- `defs`, the code location of a deployment on Celery: the same definitions as
  `pagorecon_dagster.definitions`, whose runs hand every step to a worker;
- `app`, what the workers start: `celery -A pagorecon_dagster.celery_workers worker -Q <queue>`.

The broker (`PAGORECON_CELERY_BROKER`, e.g. `pyamqp://guest@rabbitmq:5672//`; it may hold a
password, so it comes from the environment and never from a file) and the queue
(`PAGORECON_CELERY_QUEUE`, default `dagster`) are read from the environment of the process that
imports this module: the code location's and each worker's."""

from __future__ import annotations

import dagster as dg
from dagster_celery import celery_executor
from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.definitions import build_definitions
from pagorecon_dagster.resources import CELERY_BROKER_ENV as BROKER_ENV
from pagorecon_dagster.resources import celery_broker_from_environment as _broker
from pagorecon_dagster.resources import celery_queue_from_environment as _queue

# Celery's results travel back over the broker itself: no second server to run.
BACKEND = "rpc://"


def executor() -> dg.ExecutorDefinition:
    """Celery's executor on the broker and queue of the environment. The broker stays an `env`
    reference in the run's config: the password never lands in Dagster's run storage."""
    _broker()
    return celery_executor.configured(
        {"broker": {"env": BROKER_ENV}, "backend": BACKEND, "config_source": {"task_default_queue": _queue()}},
        name="celery",
    )


def _worker_app():
    # What `dagster-celery worker start` builds from the executor's config, with our broker and queue.
    celery_app = make_app(CeleryExecutor.for_cli(broker=_broker(), backend=BACKEND,
                                                 config_source={"task_default_queue": _queue()}).app_args())
    create_task(celery_app)
    create_execute_job_task(celery_app)
    create_resume_job_task(celery_app)
    return celery_app


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings(), executor=executor())


app = _worker_app()
