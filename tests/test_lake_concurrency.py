"""The warehouse shared the way production shares it, a DuckLake with its catalog in PostgreSQL:
runs of four stores in four processes at once leave the tables a serial run leaves; a worker
killed with SIGKILL inside a big transaction leaves the table as the snapshot before it, and the
rerun completes; a reader holding a query open in another process never delays a run."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import postgres_lake
import pytest
from conftest import Home
from test_orchestration import STATEMENT

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.definitions import build_definitions
from pagorecon_dagster.ingestion.loader import ingest_source
from pagorecon_dagster.partitions import range_tags
from pagorecon_dagster.reconciliation.models import Window, reconcile, refresh_current_state, summarize
from pagorecon_dagster.warehouse.duckdb import connect

pytestmark = pytest.mark.postgres_lake

D = dt.date.fromisoformat
TESTS = Path(__file__).parent
STORES = ("lima", "cusco", "piura", "tacna")
START, END = "2026-07-10", "2026-07-14"


def pg_home(path: Path, database: str, stores=STORES, rows: int = 30) -> Home:
    """A home on database `database` with `rows` CIPs and orders per store over START..END."""
    home = Home(path)
    home.path.mkdir()
    home.config(stores=[{"id": s, "name": s.title(), "order_format": "canonical", "reference_field": "order_id",
                         "auto_refund_limit": "150.00"} for s in stores])
    postgres_lake.use_catalog(home.path, database)
    for number, store in enumerate(stores):
        tag = store[:2].upper()
        home.statements("\n".join(
            STATEMENT.format(cip=f"9{number}{n:06d}", ref=f"{tag}{n}", amount=f"{n % 200 + 1}.00",
                             created=f"2026-07-{10 + n % 5:02d}T09:00:00-05:00", paid=f"2026-07-{10 + n % 5:02d}T19:30:00-05:00")
            for n in range(1, rows)) + "\n", store=store)
        # a few orders more than CIPs (awaiting or missing payments), one amount off (a difference)
        home.orders("\n".join(
            f"{tag}{n},2026-07-{10 + n % 5:02d} 08:00:00,paid,PEN,{n % 200 + 1 + (n == 3)}.00,0.00,PagoEfectivo,,,"
            for n in range(1, rows + 5)) + "\n", store=store)
    return home


RUN_GROUPS = ("ingestion", "reconciliation", "alerts")


def run_job(settings) -> dg.JobDefinition:
    """What a run does for its window, reports and refunds aside (they take most of a run's time here)."""
    job = dg.define_asset_job("recon_and_alerts", selection=dg.AssetSelection.groups(*RUN_GROUPS))
    return dg.Definitions.merge(build_definitions(settings), dg.Definitions(jobs=[job])).resolve_job_def("recon_and_alerts")


def execute(home: Home, stores) -> None:
    result = run_job(load_settings(home.path)).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), tags=range_tags(list(stores), D(START), D(END)))
    assert result.success


# One store's run in a process of its own; prints when it started and ended (wall-clock seconds).
RUN_SCRIPT = textwrap.dedent("""
    import sys, time
    started = time.time()
    from test_lake_concurrency import Home, execute
    execute(Home(sys.argv[1]), [sys.argv[2]])
    print(started, time.time())
""")


TABLES = {
    "recon_item_rows": "SELECT * FROM recon_item_rows ORDER BY ALL",
    "recon_daily_summary": "SELECT * FROM recon_daily_summary ORDER BY ALL",
    "alerts": "SELECT * EXCLUDE (created_at, delivered_at, delivery_error, resolved_at) FROM alerts ORDER BY ALL",
}


def test_four_stores_reconciled_by_four_processes_at_once_equal_a_serial_run(tmp_path):
    with postgres_lake.database() as shared, postgres_lake.database() as alone:
        home = pg_home(tmp_path / "shared", shared)
        serial = pg_home(tmp_path / "serial", alone)
        execute(serial, STORES)

        logs = [tmp_path / f"run_{store}.log" for store in STORES]
        runs = [subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, str(home.path), store],
                                 stdout=subprocess.PIPE, stderr=log.open("w"), cwd=TESTS, text=True)
                for store, log in zip(STORES, logs)]
        outputs = [r.communicate(timeout=300)[0] for r in runs]
        assert [r.returncode for r in runs] == [0] * 4, [log.read_text()[-3000:] for log in logs]
        spans = [tuple(map(float, out.split())) for out in outputs]
        assert max(start for start, _ in spans) < min(end for _, end in spans), spans  # all four ran at once

        for table, sql in TABLES.items():
            assert home.query(sql) == serial.query(sql), table
        items = home.query("SELECT store_id, count(*) AS n FROM recon_item_rows GROUP BY ALL ORDER BY ALL")
        assert items == [{"store_id": s, "n": 34} for s in sorted(STORES)]
        assert home.query("SELECT count(*) AS n FROM alerts")[0]["n"] > 0


def loaded(home: Home) -> None:
    """Landing files ingested and the current state refreshed, as a run's first steps leave them."""
    settings = load_settings(home.path)
    with connect(settings.lake) as con:
        for kind in ("fx", "orders", "statements"):
            ingest_source(con, settings, kind)
        refresh_current_state(con, settings)


def rerun(home: Home, store: str) -> float:
    """A run's reconciliation of one store's window (items and daily summary); returns its seconds."""
    settings = load_settings(home.path)
    started = time.monotonic()
    with connect(settings.lake) as con:
        window = Window((store,), D(START), D(END))
        reconcile(con, settings, window)
        summarize(con, settings, window)
    return time.monotonic() - started


# Rewrites the window of recon_item_rows with the real replace_window, but stops before COMMIT and
# says so: the test kills it there.
STALLED = textwrap.dedent("""
    import datetime as dt, sys, time
    from pagorecon_dagster.config import load_settings
    from pagorecon_dagster.definitions import build_definitions
    from pagorecon_dagster.reconciliation.models import Window
    from pagorecon_dagster.warehouse import duckdb as warehouse

    def stalled(con, body, within=None):
        con.execute("BEGIN")
        body(con)
        print("before commit", flush=True)
        time.sleep(600)

    settings = load_settings(sys.argv[1])
    window = Window((sys.argv[2],), dt.date.fromisoformat(sys.argv[3]), dt.date.fromisoformat(sys.argv[4]))
    with warehouse.connect(settings.lake) as con:
        warehouse.atomically = stalled   # once connected: opening the warehouse commits through it too
        warehouse.replace_window(con, "recon_item_rows", window.predicate, window.variables(settings))
""")


def snapshot_and_rows(home: Home) -> tuple[int, list]:
    (last,) = home.query("SELECT max(snapshot_id) AS id FROM ducklake_snapshots(current_database())")
    return last["id"], home.query(TABLES["recon_item_rows"])


def parquet_files(home: Home) -> set[Path]:
    return set((home.path / "warehouse" / "data").rglob("*.parquet"))


def test_a_worker_killed_inside_a_big_commit_leaves_the_previous_snapshot_and_the_rerun_completes(tmp_path):
    with postgres_lake.database() as name:
        home = pg_home(tmp_path / "home", name, stores=("lima",), rows=1500)   # more rows than the catalog inlines
        loaded(home)
        rerun(home, "lima")
        before = snapshot_and_rows(home)
        assert len(before[1]) == 1504
        files = parquet_files(home)

        worker = subprocess.Popen([sys.executable, "-c", STALLED, str(home.path), "lima", START, END],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert worker.stdout.readline().strip() == "before commit", worker.stderr.read()[-3000:]
            assert parquet_files(home) - files   # the new rows were written to data files already
        finally:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
        assert worker.returncode == -signal.SIGKILL

        assert snapshot_and_rows(home) == before   # nothing of the killed transaction is visible
        rerun(home, "lima")
        after = snapshot_and_rows(home)
        assert after[0] > before[0] and after[1] == before[1]


# Another process that reads the warehouse and holds its transaction open (a long query, as far
# as any writer could tell) until its stdin closes.
READER = textwrap.dedent("""
    import sys
    from pagorecon_dagster.config import load_settings
    from pagorecon_dagster.definitions import build_definitions
    from pagorecon_dagster.warehouse.duckdb import connect
    with connect(load_settings(sys.argv[1]).lake, read_only=True) as con:
        con.execute("BEGIN")
        print(con.execute("SELECT count(*) FROM recon_item_rows").fetchone()[0], flush=True)
        sys.stdin.readline()
        print(con.execute("SELECT count(*) FROM recon_item_rows").fetchone()[0], flush=True)
        con.execute("COMMIT")
""")


def test_a_reader_holding_a_query_open_never_delays_a_run(tmp_path):
    with postgres_lake.database() as name:
        home = pg_home(tmp_path / "home", name, stores=("lima", "cusco"))
        loaded(home)
        rerun(home, "lima")
        alone = min(rerun(home, "lima") for _ in range(2))

        reader = subprocess.Popen([sys.executable, "-c", READER, str(home.path)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert reader.stdout.readline().strip() == "34", reader.stderr.read()[-3000:]
            beside = rerun(home, "cusco"), rerun(home, "lima")
            assert reader.poll() is None   # the reader still holds its query: the runs did not wait for it
        finally:
            out, err = reader.communicate("\n", timeout=60)
        assert reader.returncode == 0, err[-3000:]
        assert out.strip() == "34"   # and it read one snapshot throughout: cusco's items came after it began
        assert max(beside) < 3 * alone + 2.0, (alone, beside)
        assert home.query("SELECT count(*) AS n FROM recon_item_rows")[0]["n"] == 68
