"""The Dagster code location. Each domain contributes its own definitions (`<domain>/defs.py`,
`build(settings) -> dg.Definitions`); this module merges them and adds the global policies.
Stores and partitions come from `$PAGORECON_HOME/pagorecon.yaml`."""

import dagster as dg

from pagorecon_dagster.alerts import defs as alerts_defs
from pagorecon_dagster.config import Settings, load_settings
from pagorecon_dagster.ingestion import defs as ingestion_defs
from pagorecon_dagster.jobs import MAIN_JOB, main_job  # noqa: F401  (MAIN_JOB: the name runs use)
from pagorecon_dagster.orchestration import defs as orchestration_defs
from pagorecon_dagster.reconciliation import defs as reconciliation_defs
from pagorecon_dagster.refunds import defs as refunds_defs
from pagorecon_dagster.refunds.payout import executor_name
from pagorecon_dagster.reports import defs as reports_defs
from pagorecon_dagster.resources import REFUND_PROVIDER, from_environment
from pagorecon_dagster.stores import defs as stores_defs

DOMAINS = (ingestion_defs, reconciliation_defs, refunds_defs, alerts_defs, reports_defs, orchestration_defs, stores_defs)


def build_definitions(settings: Settings, resources: dict[str, dg.ConfigurableResource] | None = None,
                      executor: dg.ExecutorDefinition = dg.multiprocess_executor) -> dg.Definitions:
    """The definitions with the deployment's resources, configured from its environment
    (resources.py); `resources` replaces some of them by key (a sandbox provider in the demo).
    `executor` runs the steps of a run launched from the code location (`pagorecon run` executes
    in its own process whatever it is); deploy/celery/ passes Celery's."""
    resources = {**from_environment(settings), **(resources or {})}
    # `pagorecon.yaml` was checked whole when `settings` was loaded; the executor may also come from
    # the environment, checked here too so a bad one never waits for a run.
    executor_name(settings, provider=resources[REFUND_PROVIDER])
    domain_defs = [domain.build(settings) for domain in DOMAINS]
    return dg.Definitions.merge(
        *domain_defs,
        dg.Definitions(
            jobs=[main_job()],
            resources=resources,
            # The warehouse is a DuckLake: steps in processes of their own (or on other machines)
            # commit side by side, and a conflicting commit is retried (warehouse/lake.py).
            executor=executor,
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings())
