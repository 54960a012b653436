"""Real homes, real DuckDB files, real Dagster runs: the helpers every test shares."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import io
import os
import shutil
import textwrap
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import psycopg2
import pytest
import yaml

from pagorecon_dagster.config import Settings, load_settings
from pagorecon_dagster.definitions import MAIN_JOB, build_definitions
from pagorecon_dagster.ingestion.loader import ingest_source
from pagorecon_dagster.jobs import following_report_runs
from pagorecon_dagster.partitions import range_tags
from pagorecon_dagster.reconciliation.models import refresh_current_state
from pagorecon_dagster.sandbox.generator import GeneratedSandbox, generate
from pagorecon_dagster.warehouse.duckdb import connect, home_lake
from pagorecon_dagster.warehouse.lake import close_all

def load_sandbox(home: Path, **generate_args) -> tuple[GeneratedSandbox, Settings]:
    """A generated sandbox in `home`: its landing files ingested and the current state refreshed
    (no Dagster run, so a test can reconcile the windows it wants)."""
    sandbox = generate(home, **generate_args)
    settings = load_settings(home)
    with connect(settings.lake) as con:
        for kind in ("fx", "orders", "statements"):
            ingest_source(con, settings, kind)
        refresh_current_state(con, settings)
    return sandbox, settings


# The reconciled scenario every refunds test starts from.
pytest_plugins = ["refunds_fixtures"]

STATEMENT_HEADER = (
    "cip,transaction_code,operation_number,status,currency,amount,commission,igv,date_creation,"
    "date_expiry,date_payment,channel,user_document_type,user_document_number,user_email"
)
CANONICAL_HEADER = "order_id,created_at,status,currency,total,discount,payment_method,cip,customer_email,customer_document"

DEFAULT_STORES = [
    {"id": "shop", "name": "Canonical Shop", "order_format": "canonical", "reference_field": "order_id", "auto_refund_limit": "150.00"},
    {"id": "shopi", "name": "Shopify Store", "order_format": "shopify", "reference_field": "name", "auto_refund_limit": "150.00"},
]


@dataclass
class Home:
    path: Path

    def config(self, **overrides) -> None:
        data = {"stores": DEFAULT_STORES, "start_date": "2026-01-01", "fx_tolerance_pct": 1.0,
                "missing_payment_grace_business_days": 2, "extra_non_working_days": [], "alerts": {"refund_rate_pct": 5.0}}
        data.update(overrides)
        (self.path / "pagorecon.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    def drop(self, relative: str, content: str | bytes, *, dedent: bool = True) -> Path:
        path = self.path / "landing" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = (textwrap.dedent(content).lstrip("\n") if dedent else content).encode("utf-8")
        path.write_bytes(content)
        return path

    def statements(self, rows: str, store: str = "shop", name: str = "statement.csv") -> Path:
        return self.drop(f"statements/{store}/{name}", STATEMENT_HEADER + "\n" + textwrap.dedent(rows).lstrip("\n"), dedent=False)

    def orders(self, rows: str, store: str = "shop", name: str = "orders.csv") -> Path:
        return self.drop(f"orders/{store}/{name}", CANONICAL_HEADER + "\n" + textwrap.dedent(rows).lstrip("\n"), dedent=False)

    def run(self, start: str, end: str, stores: Sequence[str] | None = None, instance: dg.DagsterInstance | None = None,
            without: Sequence[str] = ()):
        """What `pagorecon run` runs over the window: the main job, then the report jobs over the
        dates and store x months it reconciled (their runs are in `instance`). `without` names
        assets to leave out. Returns the main job's result."""
        settings = load_settings(self.path)
        job = build_definitions(settings).resolve_job_def(MAIN_JOB)
        chosen = list(stores or settings.store_ids)
        left_out = {dg.AssetKey(name) for name in without}
        instance = instance or dg.DagsterInstance.ephemeral()
        result = job.execute_in_process(
            instance=instance,
            tags=range_tags(chosen, dt.date.fromisoformat(start), dt.date.fromisoformat(end)),
            asset_selection=[k for k in job.asset_layer.executable_asset_keys if k not in left_out] if left_out else None,
        )
        assert result.success
        # Every invariant holds after every run; an unreadable file is a warning, not a broken invariant.
        failed = [
            (e.asset_key.to_user_string(), e.check_name)
            for e in result.get_asset_check_evaluations()
            if not e.passed and e.check_name != "files_readable"
        ]
        assert not failed, failed
        definitions = build_definitions(settings)
        for name, tags in following_report_runs(definitions, chosen, dt.date.fromisoformat(start), dt.date.fromisoformat(end)):
            report_job = definitions.resolve_job_def(name)
            if not report_job.asset_layer.executable_asset_keys <= left_out:
                assert report_job.execute_in_process(instance=instance, tags=tags).success
        return result

    def query(self, sql: str, params: Sequence = ()) -> list[dict]:
        with connect(home_lake(self.path), read_only=True) as con:
            cur = con.execute(sql, list(params))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def forget_warehouse(self) -> None:
        """Start over with no warehouse (the lake's catalog and files removed)."""
        import shutil

        from pagorecon_dagster.warehouse.lake import close_all

        close_all()
        shutil.rmtree(self.path / "warehouse", ignore_errors=True)

    def as_legacy_file(self, *statements: str) -> None:
        """Turn this home's warehouse into the single DuckDB file of an earlier version: every table
        copied into `warehouse.duckdb` (with this version's views and macros), `statements` run on
        it to give it an earlier layout, and the lake removed; the next read-write open moves the
        file into a new lake (`pagorecon migrate`)."""
        import shutil

        from pagorecon_dagster.warehouse.duckdb import build_view, schema_sql
        from pagorecon_dagster.warehouse.lake import close_all

        with connect(home_lake(self.path), read_only=True) as con:
            tables = [r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
                "AND table_type = 'BASE TABLE'").fetchall()]
            copies = {name: con.execute(f"SELECT * FROM {name}").fetch_arrow_table() for name in tables}
        with duckdb.connect(str(self.path / "warehouse.duckdb")) as old:
            old.execute("SET TimeZone = 'America/Lima'")
            old.execute(schema_sql())
            for name, rows in copies.items():
                old.register("copied", rows)
                old.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM copied")
                old.unregister("copied")
            build_view(old, "recon_items")
            for statement in statements:
                old.execute(statement)
        close_all()
        shutil.rmtree(self.path / "warehouse")

    def items(self, store: str = "shop") -> list[dict]:
        return self.query(
            "SELECT status, reason, order_id, cip, order_currency, order_total_cents, paid_currency, paid_amount_cents,"
            " difference_cents, refund_candidate, business_date, evidence FROM recon_items WHERE store_id = ?"
            " ORDER BY business_date, order_id NULLS LAST, cip",
            [store],
        )


# The files that take longest, longest first (measured with --durations; the demo's build counts
# for the first file that reads it). pytest-xdist's --dist loadfile hands files to workers in
# collection order: the long ones start first, and the short ones fill in at the end, so no worker
# is left with a long file while the other is idle.
LONGEST_FIRST = [
    "test_runs_and_storage.py", "test_nothing_new.py", "test_workspace.py", "test_orchestration.py",
    "test_reconciliation_windows.py", "test_reports_evidence.py", "test_lake_concurrency.py",
    "test_reconciliation_statuses.py", "test_restatements.py", "test_ingestion_bad_input.py",
    "test_warehouse_access.py", "test_landing_retire.py", "test_mapped_orders.py", "test_celery_workers.py",
    "test_refunds_audit_anchor.py", "test_maintain_migrate.py", "test_packaging.py", "test_bcrp.py",
    "test_health.py", "test_refunds_run_intake.py", "test_refunds_intake.py", "test_refunds_four_eyes.py",
    "test_incremental_refresh.py", "test_refunds_payout_postgres.py", "test_hourly.py", "test_shopify_api.py",
]


def pytest_collection_modifyitems(items):
    """Long files first (stable: a file's own tests keep their order, other files theirs)."""
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(autouse=True)
def _detach_warehouses_after_each_test():
    """Each test's lakes are detached when it ends: a process keeps every lake it attached, and a
    question about the catalog (`duckdb_views()`, information_schema) asks every attached lake."""
    yield
    close_all()


@dataclass(frozen=True)
class Demo:
    """A copy of what `pagorecon demo` wrote (default arguments), for this test alone. The demo
    recorded its runs in its home's own Dagster instance (`home/dagster`), copied with it."""
    home: Path
    output: str     # what the demo printed
    built_in: Path  # where it was written (the output names that folder)


@pytest.fixture(scope="session")
def _demo_built(tmp_path_factory) -> tuple[Path, str]:
    """`pagorecon demo` once per test session: the first worker to ask writes it (under a lock, in
    the folder every pytest-xdist worker of the session shares), the others wait and read it."""
    from pagorecon_dagster.cli import EXIT_OK, main
    from pagorecon_dagster.orchestration.event_log import LOCAL_DAGSTER_YAML

    shared = tmp_path_factory.getbasetemp().parent
    built, output = shared / "demo-home", shared / "demo-output.txt"
    with open(shared / "demo-home.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not output.exists():
            shutil.rmtree(built, ignore_errors=True)
            (built / "dagster").mkdir(parents=True)  # the demo's runs go to its home's own instance
            (built / "dagster" / "dagster.yaml").write_text(LOCAL_DAGSTER_YAML, encoding="utf-8")  # the CLI's own
            with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(io.StringIO()) as printed:
                env.setenv("DAGSTER_HOME", str(built / "dagster"))
                assert main(["--home", str(built), "demo"]) == EXIT_OK
            close_all()
            output.write_text(printed.getvalue(), encoding="utf-8")
    return built, output.read_text(encoding="utf-8")


@pytest.fixture
def demo(_demo_built, tmp_path: Path, monkeypatch) -> Demo:
    built, output = _demo_built
    home = tmp_path / "demo"
    shutil.copytree(built, home)
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    return Demo(home, output, built)


@pytest.fixture(scope="session")
def empty_warehouse(tmp_path_factory) -> Path:
    """The warehouse of a home, created by the product and still empty: made once per test
    process (creating one costs about 0.5-0.9 s), copied into each `home`. A local lake moves
    with its home (warehouse/lake.py, OVERRIDE_DATA_PATH)."""
    h = Home(tmp_path_factory.mktemp("empty") / "home")
    h.path.mkdir()
    h.config()
    with connect(load_settings(h.path).lake):
        pass
    close_all()
    return h.path / "warehouse"


@pytest.fixture
def home(tmp_path: Path, request) -> Home:
    """A home with the default pagorecon.yaml and an empty local warehouse; a test marked
    `new_home` (or `postgres_lake`, whose catalog is elsewhere) gets none."""
    h = Home(tmp_path / "home")
    h.path.mkdir()
    h.config()
    if not any(request.node.get_closest_marker(mark) for mark in ("new_home", "postgres_lake")):
        shutil.copytree(request.getfixturevalue("empty_warehouse"), h.path / "warehouse")
    return h


@pytest.fixture
def postgres_databases():
    """`new()` makes a fresh database on the local PostgreSQL ({"host", "db"}); all are dropped after the test."""
    host = os.environ.get("PAGORECON_PG_HOST", "127.0.0.1")
    try:
        admin = psycopg2.connect(host=host, port=5432, user="postgres", dbname="postgres", connect_timeout=5)
    except psycopg2.OperationalError as exc:  # a skipped test would hide a broken production set-up
        pytest.fail(f"PostgreSQL is not reachable at {host}:5432 ({exc}); .ci/run starts it")
    admin.autocommit = True
    made = []

    def new() -> dict[str, str]:
        name = f"pagorecon_test_{uuid.uuid4().hex[:8]}"
        admin.cursor().execute(f"CREATE DATABASE {name}")
        made.append(name)
        return {"host": host, "db": name}

    try:
        yield new
    finally:
        close_all()  # this process's attachments of the lakes on them go first
        for name in made:
            admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def postgres_db(postgres_databases) -> dict[str, str]:
    """A fresh database on the local PostgreSQL for one test."""
    return postgres_databases()
