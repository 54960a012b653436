"""Health at a glance: `pagorecon status` and the health checks judge each store the same way.

The scenario: two stores reconciled through Thursday 23 July 2026 (a Peru holiday); `steady`'s
statements reach Tuesday 21, `stopped`'s stop on Monday 20. As of Friday 24, with one business
day of lag allowed, `steady` is one business day behind (the holiday is not counted) and healthy,
`stopped` two and degraded."""

import contextlib
import datetime as dt
import io
import shutil
from types import SimpleNamespace

import dagster as dg
import duckdb
import pytest
from conftest import Home

from pagorecon_dagster import cli
from pagorecon_dagster.config import ConfigError, load_settings
from pagorecon_dagster.definitions import build_definitions
from pagorecon_dagster.orchestration.health import HEALTH_JOB, business_days_behind
from pagorecon_dagster.warehouse.duckdb import connect, home_lake
from pagorecon_dagster.warehouse.lake import close_all

REPORTS = ("daily_store_report", "all_stores_report", "month_close_report")
STORES = [{"id": store, "order_format": "canonical"} for store in ("steady", "stopped")]


def stmt(cip: str, ref: str, paid: str) -> str:
    return f"{cip},{ref},,paid,PEN,10.00,,,{paid},,{paid},BCP,DNI,44556677,ana.quispe@example.pe"


@pytest.fixture(scope="module")
def _scenario_built(tmp_path_factory):
    """The scenario reconciled once for this file (its home and the Dagster instance that ran it);
    each test copies both (`scenario`, `instance`) and takes it from there."""
    root = tmp_path_factory.mktemp("health-scenario")
    (root / "dagster").mkdir()
    (root / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    home = Home(root / "home")
    home.path.mkdir()
    home.config(stores=STORES, start_date="2026-07-01")
    for store, last in (("steady", 21), ("stopped", 20)):
        home.orders("\n".join(f"A{d},2026-07-{d} 10:00:00,paid,PEN,10.00,0.00,PagoEfectivo,,," for d in (20, 21, 22)) + "\n", store=store)
        home.statements("\n".join(stmt(f"900000{d}", f"A{d}", f"2026-07-{d}T12:00:00-05:00") for d in range(20, last + 1)) + "\n", store=store)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(root / "dagster"))
        with dg.DagsterInstance.get() as instance:
            result = home.run("2026-07-20", "2026-07-23", instance=instance, without=REPORTS)
    close_all()
    # judged against today, health is the health job's to judge, not a reconcile run's
    assert not [e for e in result.get_asset_check_evaluations() if e.check_name in ("statements_fresh", "reconciliation_fresh")]
    return root


@pytest.fixture
def scenario(_scenario_built, home, tmp_path, monkeypatch):
    """A private copy of the reconciled scenario, its runs in the instance at tmp_path/dagster."""
    shutil.rmtree(home.path)
    shutil.copytree(_scenario_built / "home", home.path)
    shutil.copytree(_scenario_built / "dagster", tmp_path / "dagster")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    return home


@pytest.fixture
def instance(tmp_path, monkeypatch, request) -> dg.DagsterInstance:
    """The Dagster instance `pagorecon status` reads, as the runs wrote it (the scenario's copy)."""
    if "scenario" in request.fixturenames:
        request.getfixturevalue("scenario")  # its runs are copied in before the instance opens
    else:
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
        (tmp_path / "dagster").mkdir()
        (tmp_path / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.get()


def status(home, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["--home", str(home.path), "status", *args])
    return code, out.getvalue()


def health_run(home, instance, as_of: str) -> dict[str, dg.AssetCheckEvaluation]:
    """A real run of the health job, as its schedule starts it, judging as of `as_of`."""
    job = build_definitions(load_settings(home.path)).resolve_job_def(HEALTH_JOB)
    config = {"ops": {node.name: {"config": {"as_of": as_of}} for node in job.graph.nodes}}
    result = job.execute_in_process(instance=instance, run_config=config)
    assert result.success
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def line_of(output: str, store: str) -> str:
    (line,) = [line for line in output.splitlines() if line.split()[:1] == [store]]
    return line


def test_the_lag_counts_peru_business_days_skipping_weekends_holidays_and_decreed_days(home):
    settings = load_settings(home.path)
    friday = dt.date(2026, 7, 24)
    assert business_days_behind(dt.date(2026, 7, 23), friday, settings) == 0
    assert business_days_behind(dt.date(2026, 7, 21), friday, settings) == 1   # 22; 23 is a holiday
    assert business_days_behind(dt.date(2026, 7, 17), dt.date(2026, 7, 21), settings) == 1   # the weekend, then 20
    assert business_days_behind(dt.date(2026, 7, 30), friday, settings) == 0
    assert business_days_behind(None, friday, settings) is None
    home.config(extra_non_working_days=["2026-07-22"])
    assert business_days_behind(dt.date(2026, 7, 21), friday, load_settings(home.path)) == 0


def test_a_store_whose_statements_stop_is_degraded_and_its_check_fails_in_a_real_run(scenario, instance):
    code, output = status(scenario, "--as-of", "2026-07-24")
    assert code == 1
    assert "2026-07-21 (1 behind)" in line_of(output, "steady") and line_of(output, "steady").endswith("healthy")
    stopped = line_of(output, "stopped")
    assert "2026-07-20 (2 behind)" in stopped and "2026-07-23 (0 behind)" in stopped
    assert stopped.endswith("DEGRADED: statements 2 business days behind (allowed 1)")
    assert "1 of 2 store(s) degraded: stopped." in output

    checks = health_run(scenario, instance, "2026-07-24")
    assert not checks["statements_fresh"].passed
    assert checks["statements_fresh"].metadata["failing"].data == {"stopped": "statements 2 business days behind (allowed 1)"}
    assert checks["reconciliation_fresh"].passed and checks["no_overdue_refunds"].passed and checks["no_critical_alerts"].passed

    # a decreed day off on Wednesday 22: `stopped` is one business day behind too
    scenario.config(stores=STORES, start_date="2026-07-01", extra_non_working_days=["2026-07-22"])
    assert status(scenario, "--as-of", "2026-07-24")[0] == 0
    assert health_run(scenario, instance, "2026-07-24")["statements_fresh"].passed
    # a larger allowance, from pagorecon.yaml
    scenario.config(stores=STORES, start_date="2026-07-01", health={"statement_lag_business_days": 2})
    assert status(scenario, "--as-of", "2026-07-24")[0] == 0


def test_reconciliation_behind_today_degrades_and_names_the_last_run(scenario, instance):
    (run,) = instance.get_run_records(dg.RunsFilter(job_name="reconcile"))
    code, output = status(scenario, "--as-of", "2026-07-28", "--store", "steady")   # 24 and 27 not reconciled
    assert code == 1
    assert run.dagster_run.run_id[:8] in line_of(output, "steady")
    assert "DEGRADED: statements 3 business days behind (allowed 1); reconciliation 2 business days behind (allowed 1)" in output
    assert "stopped" not in output
    assert not health_run(scenario, instance, "2026-07-28")["reconciliation_fresh"].passed


def test_an_overdue_refund_degrades_its_store_until_it_is_paid(scenario, instance):
    assert status(scenario, "--as-of", "2026-07-24", "--store", "steady")[0] == 0
    # approved Tuesday 14 July: due by Friday 17 (three business days), overdue from Saturday 18
    with connect(home_lake(scenario.path)) as con:
        for refund_id, status_now, completed in (("R1", "approved", None), ("R2", "paid", "2026-07-20 09:00:00-05"),
                                                 ("R3", "awaiting_approval", None)):
            con.execute(
                "INSERT INTO refunds (refund_id, store_id, cip, amount_cents, currency, reason, source, status, requested_by,"
                " requested_at, approved_at, completed_at) VALUES (?, 'steady', '90000020', 500, 'PEN', 'test', 'request', ?,"
                " 'finance', TIMESTAMPTZ '2026-07-14 09:00:00-05', CASE WHEN ? = 'awaiting_approval' THEN NULL"
                " ELSE TIMESTAMPTZ '2026-07-14 11:00:00-05' END, CAST(? AS TIMESTAMPTZ))",
                [refund_id, status_now, status_now, completed],
            )
    code, output = status(scenario, "--as-of", "2026-07-24", "--store", "steady")
    assert code == 1
    # R2 was paid late: the REFUND_OVERDUE alert of its day counts it, but it is no longer outstanding
    assert "1 awaiting approval, 1 overdue" in line_of(output, "steady")
    assert line_of(output, "steady").endswith("DEGRADED: 1 refund(s) overdue")
    check = health_run(scenario, instance, "2026-07-24")["no_overdue_refunds"]
    assert not check.passed and check.metadata["failing"].data == {"steady": "1 refund(s) overdue"}

    with connect(home_lake(scenario.path)) as con:
        con.execute("UPDATE refunds SET status = 'paid', completed_at = TIMESTAMPTZ '2026-07-23 10:00:00-05' WHERE refund_id = 'R1'")
    assert status(scenario, "--as-of", "2026-07-24", "--store", "steady")[0] == 0


def test_an_open_critical_alert_degrades_and_a_warning_does_not(scenario, instance):
    (warnings,) = scenario.query("SELECT count(*) AS n FROM alerts WHERE store_id = 'steady' AND resolved_at IS NULL")
    with connect(home_lake(scenario.path)) as con:
        con.execute("INSERT INTO alerts (alert_id, kind, store_id, business_date, severity, message, created_at) VALUES "
                    "('W|steady', 'VALIDATION_REJECTS', 'steady', DATE '2026-07-22', 'warning', 'x', now())")
    code, output = status(scenario, "--as-of", "2026-07-24", "--store", "steady")
    assert (code, f"{warnings['n'] + 1} warning" in line_of(output, "steady")) == (0, True)
    with connect(home_lake(scenario.path)) as con:
        # a failed run over several stores is every store's alert
        con.execute("INSERT INTO alerts (alert_id, kind, store_id, business_date, severity, message, created_at) VALUES "
                    "('RUN_FAILED|r1', 'RUN_FAILED', NULL, DATE '2026-07-23', 'critical', 'x', now())")
    code, output = status(scenario, "--as-of", "2026-07-24", "--store", "steady")
    assert code == 1 and line_of(output, "steady").endswith("DEGRADED: 1 critical alert(s) open")
    assert not health_run(scenario, instance, "2026-07-24")["no_critical_alerts"].passed


def test_usage_errors_exit_2(scenario, capsys):
    assert status(scenario, "--store", "nowhere")[0] == 2
    assert "unknown store(s) nowhere" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad_date:
        status(scenario, "--as-of", "24/07/2026")
    assert bad_date.value.code == 2


@pytest.mark.parametrize(("health", "message"), [
    ({"statement_lag_business_days": 31}, "`health.statement_lag_business_days` must be a whole number 0-30, got 31"),
    ({"reconcile_lag_business_days": -1}, "`health.reconcile_lag_business_days` must be a whole number 0-30, got -1"),
    ({"lag": 1}, "`health` has unknown key(s) lag; allowed: statement_lag_business_days, reconcile_lag_business_days"),
])
def test_the_health_section_is_checked_at_start(home, health, message):
    home.config(health=health)
    with pytest.raises(ConfigError) as refused:
        load_settings(home.path)
    assert str(refused.value).endswith(message)


def test_a_healthy_demo_sized_home_exits_0_lists_every_store_and_shows_no_personal_data(demo):
    home, instance = demo.home, dg.DagsterInstance.get()  # the demo's own runs
    settings = load_settings(home)

    demo = SimpleNamespace(path=home)
    code, output = status(demo, "--as-of", "2026-08-03")   # the Monday after the sandbox's last day
    assert code == 0, output
    for store_id in settings.store_ids:
        assert line_of(output, store_id).endswith("healthy")
    assert f"0 of {len(settings.store_ids)} store(s) degraded." in output
    with connect(home_lake(home), read_only=True) as con:
        personal = {v for row in con.execute(
            "SELECT DISTINCT user_email, user_document_number FROM statement_rows").fetchall() for v in row if v}
    assert personal and not [value for value in personal if value in output]
    checks = health_run(demo, instance, "2026-08-03")
    assert sorted(checks) == ["no_critical_alerts", "no_overdue_refunds", "reconciliation_fresh", "statements_fresh"]
    assert all(check.passed for check in checks.values())
