"""Runs on several workers: the reconcile job executed step by step by two Celery workers on the
local RabbitMQ, the warehouse a DuckLake on a PostgreSQL catalog and Dagster's storage in
PostgreSQL (deploy/dagster.yaml), gives the same tables as an in-process run of the same home."""

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.definitions import MAIN_JOB, build_definitions
from pagorecon_dagster.partitions import range_tags
from pagorecon_dagster.sandbox.generator import generate
from pagorecon_dagster.warehouse.duckdb import connect

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"
START, DAYS = dt.date(2026, 7, 13), 2

# What both runs must agree on: the contract's tables, and the columns of the bookkeeping ones that
# do not say when or by which run (file_seq numbers files in the order processes took them).
COMPARED = {
    "orders": "* EXCLUDE (file_seq)",
    "payments": "* EXCLUDE (file_seq)",
    "quarantine": "* EXCLUDE (file_seq)",
    "fx_rates": "*",
    "recon_items": "*",
    "recon_daily_summary": "*",
    "ingested_files": "file, sha256, source, store_id, encoding, rows_read, rows_loaded, rows_quarantined, status, error",
    "refunds": "refund_id, store_id, order_id, cip, amount_cents, currency, reason, source, status",
    "alerts": "kind, store_id, business_date, severity, value, threshold, message",
}


@pytest.fixture
def rabbitmq():
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=5).close()
    except OSError as exc:
        pytest.fail(f"RabbitMQ is not reachable at 127.0.0.1:5672 ({exc}); .ci/run starts it (scripts/ensure-rabbitmq)")
    return BROKER


def sandbox_home(path: Path, catalog_db: dict) -> Path:
    generate(path, stores=2, days=DAYS, start=START)
    config = yaml.safe_load((path / "pagorecon.yaml").read_text())
    config["warehouse"] = {"catalog": "postgres", "postgres": f"host={catalog_db['host']} port=5432 dbname={catalog_db['db']} user=postgres"}
    (path / "pagorecon.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def tables(home: Path) -> dict[str, list]:
    with connect(load_settings(home).lake, read_only=True) as con:
        return {t: con.execute(f"SELECT {columns} FROM {t} ORDER BY ALL").fetchall() for t, columns in COMPARED.items()}


def start_worker(name: str, queue: str, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "celery"), "-A", "pagorecon_dagster.celery_workers", "worker", "-Q", queue, "-n", f"{name}@%h",
         "--concurrency", "1", "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(workers: dict[str, tuple[subprocess.Popen, Path]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    waiting = dict(workers)
    while waiting and time.monotonic() < deadline:
        for name, (process, log) in list(waiting.items()):
            assert process.poll() is None, f"worker {name} exited: {log.read_text(errors='replace')[-3000:]}"
            if f"{name}@" in (text := log.read_text(errors="replace")) and " ready." in text:
                del waiting[name]
        time.sleep(0.3)
    assert not waiting, f"workers not ready after {timeout}s: {sorted(waiting)}"


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_run_on_two_celery_workers_gives_the_tables_of_an_in_process_run(rabbitmq, postgres_databases, tmp_path):
    on_celery = sandbox_home(tmp_path / "on_celery", postgres_databases())
    in_process = sandbox_home(tmp_path / "in_process", postgres_databases())
    storage = postgres_databases()
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text((REPO / "deploy" / "dagster.yaml").read_text())
    queue = f"pagorecon_test_{uuid.uuid4().hex[:8]}"  # tests running at once never take each other's steps
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(REPO),
           "PAGORECON_HOME": str(on_celery), "DAGSTER_HOME": str(dagster_home),
           "PAGORECON_PG_HOST": storage["host"], "PAGORECON_PG_PORT": "5432", "PAGORECON_PG_DB": storage["db"],
           "PAGORECON_PG_USER": "postgres", "PAGORECON_PG_PASSWORD": "unused-with-trust-auth",
           "PAGORECON_CELERY_BROKER": rabbitmq, "PAGORECON_CELERY_QUEUE": queue}
    settings = load_settings(on_celery)
    tags = range_tags(settings.store_ids, START, START + dt.timedelta(days=DAYS - 1))

    workers = {name: (start_worker(name, queue, env, tmp_path / f"{name}.log"), tmp_path / f"{name}.log")
               for name in (f"{queue}_w1", f"{queue}_w2")}
    run = None
    try:
        wait_ready(workers)
        run = subprocess.Popen([str(BIN / "dagster"), "job", "execute", "-m", "pagorecon_dagster.celery_workers", "-j", MAIN_JOB,
                                "--tags", json.dumps(tags)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # meanwhile, the same home in this process, on a catalog of its own
        result = build_definitions(load_settings(in_process)).resolve_job_def(MAIN_JOB).execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), tags=tags)
        assert result.success
        output = run.communicate(timeout=300)[0]
        assert run.returncode == 0, output[-5000:]
    finally:
        if run is not None and run.poll() is None:
            run.kill()
            run.wait()
        for process, _ in workers.values():
            stop(process)
    # every step went through the broker, and both workers took some
    assert "Submitting celery task for step" in output
    executed = {name: log.read_text(errors="replace").count("Task execute_plan[") for name, (_, log) in workers.items()}
    assert all(executed.values()), executed

    celery_tables, in_process_tables = tables(on_celery), tables(in_process)
    assert len(celery_tables["recon_items"]) > 20 and celery_tables["quarantine"]
    for table in COMPARED:
        assert celery_tables[table] == in_process_tables[table], table
