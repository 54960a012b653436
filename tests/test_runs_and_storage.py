"""Whole runs: determinism, partition-scoped reruns, the CLI's exit codes, and the production
Dagster instance on PostgreSQL (dagster-postgres)."""

import os
import subprocess
import sys

import dagster as dg
import psycopg2
import pytest
import yaml

from pagorecon_dagster.cli import EXIT_OK, EXIT_UNREADABLE_FILES, main
from pagorecon_dagster.warehouse.duckdb import connect, home_lake

TABLES = ["orders", "payments", "fx_rates", "recon_items", "recon_daily_summary", "quarantine"]


def snapshot(home):
    return {t: home.query(f"SELECT * EXCLUDE (file_seq) FROM {t} ORDER BY ALL" if t in ("orders", "payments", "quarantine") else f"SELECT * FROM {t} ORDER BY ALL") for t in TABLES}


def seed(home):
    home.orders(
        """\
        A1,2026-07-14 10:00:00,paid,PEN,100.00,0.00,PagoEfectivo,,ana@example.pe,12345678
        A2,2026-07-15 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,
        A3,2026-07-15 10:00:00,pending,USD,10.00,0.00,PagoEfectivo,,,
        A4,bad-date,pending,USD,10.00,0.00,PagoEfectivo,,,
        """
    )
    home.statements(
        """\
        90000001,A1,,paid,PEN,100.00,3.50,0.63,2026-07-14T10:01:00-05:00,,2026-07-14T12:00:00-05:00,BCP,DNI,12345678,
        90000002,A2,,paid,PEN,49.00,,,2026-07-15T10:01:00-05:00,,2026-07-15T19:30:00-05:00,BCP,,,
        90000003,A3,,paid,PEN,37.45,,,2026-07-15T10:01:00-05:00,,2026-07-15T19:30:00-05:00,BCP,,,
        """
    )
    home.drop("fx/sbs.csv", "date,currency,buy,sell\n2026-07-14,USD,3.740,3.745\n")


def test_materializing_twice_gives_identical_tables(home):
    seed(home)
    home.run("2026-07-14", "2026-07-16")
    first = snapshot(home)
    assert len(first["recon_items"]) == 3
    home.run("2026-07-14", "2026-07-16")
    assert snapshot(home) == first


def test_partition_rerun_replaces_only_that_partition(home):
    seed(home)
    home.run("2026-07-14", "2026-07-15")
    before = {r["order_id"]: r["status"] for r in home.items()}
    assert before == {"A1": "MATCHED", "A2": "AMOUNT_MISMATCH", "A3": "MATCHED"}
    # a later statement restates A1's and A2's CIPs as reversed; only 07-15 is rerun
    home.statements(
        "90000001,A1,,reversed,PEN,100.00,,,2026-07-14T10:01:00-05:00,,2026-07-14T12:00:00-05:00,BCP,,,\n"
        "90000002,A2,,reversed,PEN,49.00,,,2026-07-15T10:01:00-05:00,,2026-07-15T19:30:00-05:00,BCP,,,\n",
        name="late.csv",
    )
    home.run("2026-07-15", "2026-07-15")
    after = {r["order_id"]: r["status"] for r in home.items()}
    assert after == {"A1": "MATCHED", "A2": "REVERSED", "A3": "MATCHED"}


def test_cli_run_exit_codes_and_summary(home, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    seed(home)
    code = main(["--home", str(home.path), "run", "--start", "2026-07-14", "--end", "2026-07-15"])
    out = capsys.readouterr()
    assert code == EXIT_OK, out.err
    assert "MATCHED" in out.out and "Quarantined rows: 1 new" in out.out and "catalog.sqlite" in out.out
    home.drop("statements/shop/broken.csv", b"")
    code = main(["--home", str(home.path), "run", "--start", "2026-07-14", "--end", "2026-07-15"])
    err = capsys.readouterr().err
    assert code == EXIT_UNREADABLE_FILES
    assert "landing/statements/shop/broken.csv: empty file" in err
    # everything else was still reconciled
    assert len(home.items()) == 3


def test_cli_refuses_a_bad_config_naming_the_key(home, capsys):
    (home.path / "pagorecon.yaml").write_text(yaml.safe_dump({"stores": [{"id": "Bad Store", "order_format": "shopify"}]}))
    assert main(["--home", str(home.path), "run", "--start", "2026-07-14", "--end", "2026-07-15"]) == 2
    assert "`stores[0].id` must match [a-z0-9_]{1,32}, got 'Bad Store'" in capsys.readouterr().err


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "pagorecon_dagster.cli", "--help"], capture_output=True, text=True, check=True)
    assert "demo" in out.stdout and "run" in out.stdout


def test_real_run_on_a_postgres_backed_instance(home, postgres_db, tmp_path, monkeypatch):
    """deploy/dagster.yaml as shipped, credentials from the environment."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shipped = open(os.path.join(os.path.dirname(__file__), "..", "deploy", "dagster.yaml")).read()
    (dagster_home / "dagster.yaml").write_text(shipped)
    for key, value in {"PAGORECON_PG_HOST": postgres_db["host"], "PAGORECON_PG_PORT": "5432", "PAGORECON_PG_DB": postgres_db["db"],
                       "PAGORECON_PG_USER": "postgres", "PAGORECON_PG_PASSWORD": "unused-with-trust-auth"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    seed(home)
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = home.run("2026-07-14", "2026-07-15", instance=instance)
        assert instance.get_run_by_id(result.run_id).is_success
        recorded = instance.fetch_materializations(dg.AssetKey("recon_items"), limit=10).records
        # one run, one materialization per store x day partition: 2 stores x 2 days
        assert sorted(r.partition_key for r in recorded) == ["2026-07-14|shop", "2026-07-14|shopi", "2026-07-15|shop", "2026-07-15|shopi"]
        assert {r.run_id for r in recorded} == {result.run_id}
    with psycopg2.connect(host=postgres_db["host"], user="postgres", dbname=postgres_db["db"]) as con:
        cur = con.cursor()
        # the window's one run, then one per report job (reports per date and per store x month)
        cur.execute("SELECT pipeline_name, count(*) FROM runs GROUP BY pipeline_name")
        assert dict(cur.fetchall()) == {"reconcile": 1, "all_stores_report_job": 1, "month_close_report_job": 1}
        cur.execute("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
        assert cur.fetchone()[0] >= 10
    assert len(home.items()) == 3


def test_demo_reconciles_every_planted_scenario(tmp_path, demo):
    from pagorecon_dagster.sandbox.generator import generate
    from pagorecon_dagster.sandbox.shopify_api import add_demo_shop

    home, out = demo.home, demo.output  # `pagorecon demo`, written once for the session (conftest.py)
    assert "Where to look" in out and str(demo.built_in / "warehouse" / "catalog.sqlite") in out
    # it ends with what finance checks first: the health of every store, the index page, the mailbox
    assert "$ pagorecon status --as-of" in out and "store(s) degraded" in out
    assert (home / "reports" / "index.html").is_file() and list((home / "mailbox").glob("*.eml"))
    sandbox = generate(tmp_path / "again", mapped_store=True)  # what `pagorecon demo` writes
    planted = dict(sandbox.expected)
    # the demo's one more store, whose orders it pulls from the Shopify API sandbox
    shopify_api_store = add_demo_shop(tmp_path / "again", stores=3, days=21, start=sandbox.start, seed=7)
    for status, count in shopify_api_store.expected.items():
        planted[status] += count
    import duckdb

    with connect(home_lake(home), read_only=True) as con:
        counts = dict(con.execute("SELECT status, count(*) FROM recon_items GROUP BY status").fetchall())
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        mismatches = con.execute("SELECT count(*) FROM alerts WHERE kind = 'NOTIFICATION_MISMATCH'").fetchone()[0]
        refunds_paid = con.execute("SELECT count(*) FROM refunds WHERE status = 'paid'").fetchone()[0]
    assert counts == {k: v for k, v in planted.items() if k != "QUARANTINED"}
    assert mismatches == sandbox.expected_alerts["NOTIFICATION_MISMATCH"]
    assert refunds_paid > 0
    assert quarantined == planted["QUARANTINED"]
    # the demo refuses to overwrite a home it did not write
    other = tmp_path / "real"
    other.mkdir()
    (other / "pagorecon.yaml").write_text("stores: []\n")
    assert main(["--home", str(other), "demo"]) == 2


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"alerts": {"refund_rate_pct": 5.0, "unreconciled": 3}}, "`alerts` has unknown key(s) unreconciled"),
        ({"alerts": {"unreconciled_pct": 120}}, "`alerts.unreconciled_pct` must be a number between 0 and 100, got 120"),
        ({"schedule": {"hour": 25}}, "`schedule.hour` must be a whole number 0-23 (Lima time), got 25"),
        ({"refunds": {"executor": "cash"}}, "`refunds.executor` must be one of"),
        ({"fx_tolerance_pct": "one"}, "`fx_tolerance_pct` must be a number, got 'one'"),
        ({"extra_non_working_days": ["2026-13-01"]}, "`extra_non_working_days[0]` must be an ISO date YYYY-MM-DD, got '2026-13-01'"),
    ],
)
def test_every_config_section_is_checked_at_start(home, capsys, overrides, message):
    home.config(**overrides)
    assert main(["--home", str(home.path), "run", "--start", "2026-07-14", "--end", "2026-07-15"]) == 2
    assert message in capsys.readouterr().err


def test_duckdb_memory_limit_from_the_environment(home, monkeypatch):
    from pagorecon_dagster.config import load_settings
    from pagorecon_dagster.definitions import build_definitions
    from pagorecon_dagster.warehouse.duckdb import connect

    seed(home)
    monkeypatch.setenv("PAGORECON_DUCKDB_MEMORY_LIMIT", "300MB")
    home.run("2026-07-14", "2026-07-15")
    warehouse = build_definitions(load_settings(home.path)).resources["pagorecon"]
    with warehouse.warehouse() as con:
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "286.1 MiB"
    with connect(home_lake(home.path)) as con:  # the limit comes from the resource, not from connect
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] != "286.1 MiB"
    assert len(home.query("SELECT * FROM recon_items")) == 3
    monkeypatch.setenv("PAGORECON_DUCKDB_MEMORY_LIMIT", "plenty")
    with pytest.raises(ValueError, match="PAGORECON_DUCKDB_MEMORY_LIMIT='plenty' is not a memory size"):
        with warehouse.warehouse():
            pass


def _partitioned_run(dagster_home, batch_size: str | None, monkeypatch) -> list[tuple]:
    """A single-run backfill of 40 partitions of one asset on the instance of `dagster_home`; what
    the instance then says of every partition and of the asset."""
    if batch_size is None:
        monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    else:
        monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", batch_size)
    keys = [f"2026-07-{day:02d}|{store}" for day in range(1, 21) for store in ("a", "b")]
    partitions = dg.StaticPartitionsDefinition(keys)

    @dg.asset(partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run())
    def items(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"rows": len(context.partition_keys)})

    job = dg.Definitions(assets=[items]).resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        run = job.execute_in_process(instance=instance, tags={"dagster/asset_partition_range_start": keys[0],
                                                              "dagster/asset_partition_range_end": keys[-1]})
        assert run.success
        records = instance.fetch_materializations(dg.AssetKey("items"), limit=1000).records
        planned = instance.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
                                                                   asset_key=dg.AssetKey("items")))
        latest = instance.get_latest_materialization_event(dg.AssetKey("items"))
        return [
            type(instance.event_log_storage).__name__,
            sorted(instance.get_materialized_partitions(dg.AssetKey("items"))),
            sorted((r.partition_key, r.asset_materialization.metadata["rows"].value) for r in records),
            sorted(r.event_log_entry.dagster_event.partition for r in planned),
            latest.dagster_event.partition == records[0].partition_key,  # the asset's row keeps the last one
            len(instance.all_logs(run.run_id)),
        ]


def test_the_local_instance_writes_a_steps_asset_events_in_one_go_and_records_what_the_sqlite_one_does(tmp_path, monkeypatch):
    """`pagorecon` gives a local DAGSTER_HOME an event log that writes a step's batch of asset
    events (one per partition) at once: what the instance then knows equals Dagster's own SQLite
    event log writing them one by one (batched or not)."""
    from pagorecon_dagster.orchestration.event_log import LOCAL_DAGSTER_YAML

    found = {}
    for name, config, batch in (("sqlite", "telemetry:\n  enabled: false\n", None),
                                ("sqlite, batches", "telemetry:\n  enabled: false\n", "1000"),
                                ("local", LOCAL_DAGSTER_YAML, "1000"),
                                ("local, batches of 7", LOCAL_DAGSTER_YAML, "7")):
        dagster_home = tmp_path / name
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text(config)
        monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
        found[name] = _partitioned_run(dagster_home, batch, monkeypatch)
    assert found["local"][0] == "BatchedSqliteEventLogStorage" and found["sqlite"][0] == "SqliteEventLogStorage"
    assert len(found["sqlite"][1]) == 40 and found["sqlite"][4]
    for name in ("sqlite, batches", "local", "local, batches of 7"):
        assert found[name][1:] == found["sqlite"][1:], name


def test_a_run_without_dagster_home_keeps_its_history_in_the_home_with_the_local_event_log(home, capsys, monkeypatch):
    """No DAGSTER_HOME: the run's instance is home/dagster, whose dagster.yaml pagorecon writes; one
    an earlier version wrote is brought up to date, one a person edited is left as it is."""
    from pagorecon_dagster.orchestration.event_log import EARLIER_LOCAL_DAGSTER_YAML, LOCAL_DAGSTER_YAML

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    seed(home)
    config = home.path / "dagster" / "dagster.yaml"
    config.parent.mkdir()
    config.write_text(EARLIER_LOCAL_DAGSTER_YAML)
    assert main(["--home", str(home.path), "run", "--start", "2026-07-14", "--end", "2026-07-15"]) == EXIT_OK
    assert config.read_text() == LOCAL_DAGSTER_YAML
    with dg.DagsterInstance.from_config(str(config.parent)) as instance:
        assert type(instance.event_log_storage).__name__ == "BatchedSqliteEventLogStorage"
        assert sorted(instance.get_materialized_partitions(dg.AssetKey("recon_items"))) == [
            "2026-07-14|shop", "2026-07-14|shopi", "2026-07-15|shop", "2026-07-15|shopi"]
    edited = EARLIER_LOCAL_DAGSTER_YAML + "# kept as is\n"
    config.write_text(edited)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["--home", str(home.path), "run", "--start", "2026-07-14", "--end", "2026-07-15", "--force"]) == EXIT_OK
    assert config.read_text() == edited
