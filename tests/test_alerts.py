"""Alerts: each kind fires on a day that should fire it and stays silent on one that should not;
reruns update in place; the sensors only request runs: delivery happens in a real `deliver_alerts`
run, to the log and to a real webhook on loopback, retried until it gets through; failed runs
become RUN_FAILED alerts through `record_run_failure` runs, once, and the alert jobs' own failures
never feed back into alerts.

Runs here materialize ingestion, reconciliation and alerts (reports are left out for speed)."""

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import duckdb
import pytest

from pagorecon_dagster.alerts import delivery, jobs
from pagorecon_dagster.alerts.channel import WEBHOOK_ENV, AlertChannel
from pagorecon_dagster.resources import alert_channel_from_environment as alert_channel
from pagorecon_dagster.alerts.rules import refresh
from pagorecon_dagster.config import load_settings
from pagorecon_dagster.definitions import build_definitions
from pagorecon_dagster.partitions import range_tags
from pagorecon_dagster.reconciliation.models import Window
from pagorecon_dagster.resources import PagoreconHome
from pagorecon_dagster.warehouse.duckdb import connect, home_lake

D = dt.date.fromisoformat
UTC = dt.timezone.utc


def job_for(home, groups=("ingestion", "reconciliation", "alerts")) -> dg.JobDefinition:
    job = dg.define_asset_job("with_alerts", selection=dg.AssetSelection.groups(*groups))
    defs = dg.Definitions.merge(build_definitions(load_settings(home.path)), dg.Definitions(jobs=[job]))
    return defs.resolve_job_def("with_alerts")


def run(home, start, end, stores=("shop",), groups=("ingestion", "reconciliation", "alerts"), instance=None, ok=True, job=None):
    result = (job or job_for(home, groups)).execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(), tags=range_tags(list(stores), D(start), D(end)), raise_on_error=False
    )
    assert result.success is ok
    return result


def alerts(home, kind=None):
    rows = home.query("SELECT * FROM alerts ORDER BY alert_id")
    return [r for r in rows if kind is None or r["kind"] == kind]


def ids(home, kind):
    return [r["alert_id"] for r in alerts(home, kind)]


def stmt(cip, ref, amount, paid, status="paid", currency="PEN", created=None):
    created = created or paid
    return f"{cip},{ref},,{status},{currency},{amount},,,{created},,{paid},BCP,DNI,12345678,ana@example.pe"


def paid_orders(day, count, prefix, amount="100.00"):
    orders = [f"{prefix}{n},{day} 10:00:00,pending,PEN,{amount},0.00,PagoEfectivo,,," for n in range(count)]
    payments = [stmt(f"9{prefix}{n:03d}{day[-2:]}", f"{prefix}{n}", amount, f"{day}T11:00:00-05:00") for n in range(count)]
    return orders, payments


def test_refund_rate_high_by_amount_fires_and_a_low_rate_stays_silent(home):
    home.config(alerts={"refund_rate_pct": 30.0})
    o14, p14 = paid_orders("2026-07-14", 4, "A")
    o15, p15 = paid_orders("2026-07-15", 4, "B")
    home.orders("\n".join(o14 + o15) + "\n")
    home.statements("\n".join(p14 + p15) + "\n")
    run(home, "2026-07-14", "2026-07-15", groups=("ingestion", "reconciliation"))
    with connect(home_lake(home.path)) as con:
        for refund_id, cip, cents in (("R1", "9A00014", 13000), ("R2", "9B00015", 2000), ("R3", "9B00115", 0)):
            con.execute(
                "INSERT INTO refunds (refund_id, store_id, cip, amount_cents, currency, reason, source, status, requested_by, requested_at)"
                " VALUES (?, 'shop', ?, ?, 'PEN', 'test', 'request', ?, 'finance', TIMESTAMPTZ '2026-07-16 10:00:00-05')",
                [refund_id, cip, cents, "rejected" if refund_id == "R3" else "requested"],
            )
    run(home, "2026-07-14", "2026-07-15", groups=("alerts",))
    (alert,) = alerts(home, "REFUND_RATE_HIGH")
    # 1 of 4 by count (25%) is under 30%; PEN 130.00 of PEN 400.00 (32.5%) by amount is over it.
    assert (alert["alert_id"], alert["value"], alert["threshold"], alert["severity"]) == (
        "REFUND_RATE_HIGH|shop|2026-07-14", "32.5%", "30%", "warning")
    assert alert["message"] == (
        "Refunds asked for 1 of 4 payments reconciled on 2026-07-14 (25.0% by count; by amount PEN 130.00 of PEN 400.00), above 30%."
    )


def test_unreconciled_high_fires_above_the_share_and_not_at_it(home):
    o14, p14 = paid_orders("2026-07-14", 5, "A")
    o15, p15 = paid_orders("2026-07-15", 10, "B")
    p14[0] = stmt("9A00014", "A0", "90.00", "2026-07-14T11:00:00-05:00")   # 1 of 5 underpaid: 20%
    p15[0] = stmt("9B00015", "B0", "90.00", "2026-07-15T11:00:00-05:00")   # 1 of 10: 10%, not above
    o15.append("B99,2026-07-15 12:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,")  # waits on the buyer: not counted as open
    home.orders("\n".join(o14 + o15) + "\n")
    home.statements("\n".join(p14 + p15) + "\n")
    run(home, "2026-07-14", "2026-07-15")
    (alert,) = alerts(home, "UNRECONCILED_HIGH")
    assert (alert["alert_id"], alert["value"], alert["threshold"]) == ("UNRECONCILED_HIGH|shop|2026-07-14", "20.0%", "10%")
    assert alert["message"] == "1 of 5 items reconciled on 2026-07-14 need a person (AMOUNT_MISMATCH 1), above 10%."


def test_statement_missing_fires_after_the_cutoff_and_knows_the_holidays(home):
    home.orders(
        """\
        A1,2026-07-14 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,
        A2,2026-07-15 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,
        A3,2026-07-27 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,
        A4,2026-07-28 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,
        """
    )
    # statements for the 15th, 16th and 29th only: the 14th (Tue) and 27th (Mon) have none
    home.statements("\n".join([
        stmt("90000002", "A2", "10.00", "", status="pending", created="2026-07-15T10:01:00-05:00"),
        stmt("90000005", "Z5", "10.00", "2026-07-16T10:00:00-05:00"),
        stmt("90000006", "Z6", "10.00", "2026-07-29T10:00:00-05:00"),
    ]) + "\n")
    run(home, "2026-07-14", "2026-07-15")
    (alert,) = alerts(home, "STATEMENT_MISSING")
    assert (alert["alert_id"], alert["threshold"]) == ("STATEMENT_MISSING|shop|2026-07-14", "due by 2026-07-15")
    assert alert["message"] == (
        "No PagoEfectivo statement for business day 2026-07-14, due by 2026-07-15 (statements cover up to 2026-07-29);"
        " 1 order version(s) and 0 notified payment(s) that day wait for it."
    )
    # Monday 27 July: 28 and 29 are holidays, so its statement is due by Thursday the 30th. The
    # holiday 28th itself is no business day: no alert whatever arrives.
    settings = load_settings(home.path)
    window = Window(("shop",), D("2026-07-27"), D("2026-07-28"))
    now = dt.datetime(2026, 7, 30, 12, tzinfo=UTC)
    with connect(home_lake(home.path)) as con:
        refresh(con, settings, window, now=now, today=D("2026-07-30"))
    assert ids(home, "STATEMENT_MISSING") == ["STATEMENT_MISSING|shop|2026-07-14"]
    with connect(home_lake(home.path)) as con:
        refresh(con, settings, window, now=now, today=D("2026-07-31"))
    assert ids(home, "STATEMENT_MISSING") == ["STATEMENT_MISSING|shop|2026-07-14", "STATEMENT_MISSING|shop|2026-07-27"]


def test_validation_rejects_fire_for_the_days_a_file_with_bad_rows_touches(home):
    home.orders("A1,2026-07-14 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,\nA2,2026-07-14 11:00:00,pending,PEN,1.234,0.00,PagoEfectivo,,,\n")
    home.orders("B1,2026-07-15 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,\n", name="clean.csv")
    home.statements(stmt("90000001", "A1", "10.00", "2026-07-14T12:00:00-05:00") + "\n"
                    + stmt("90000002", "B1", "10.00", "2026-07-15T12:00:00-05:00") + "\n")
    run(home, "2026-07-14", "2026-07-15")
    (alert,) = alerts(home, "VALIDATION_REJECTS")
    assert (alert["alert_id"], alert["value"], alert["threshold"]) == ("VALIDATION_REJECTS|shop|2026-07-14", "1 rows, 0 unreadable files", "0")
    assert alert["message"] == (
        "1 rejected row(s) and 0 unreadable file(s) in landing files touching 2026-07-14:"
        " landing/orders/shop/orders.csv 1 rejected. Rows are in table quarantine."
    )


def test_refund_overdue_counts_three_peru_business_days(home):
    home.orders("A1,2026-07-22 10:00:00,paid,PEN,50.00,0.00,PagoEfectivo,,,\n")
    home.statements(stmt("90000001", "A1", "50.00", "2026-07-22T12:00:00-05:00") + "\n")
    run(home, "2026-07-22", "2026-07-22", groups=("ingestion", "reconciliation"))
    # approved Friday 24 July; 28-29 are holidays: the deadline is Friday 31 July
    with connect(home_lake(home.path)) as con:
        for refund_id, status, completed in (("R1", "approved", None), ("R2", "paid", "2026-07-31 18:00:00-05"), ("R3", "paid", "2026-08-03 09:00:00-05")):
            con.execute(
                "INSERT INTO refunds (refund_id, store_id, cip, amount_cents, currency, reason, source, status, requested_by,"
                " requested_at, approved_at, completed_at) VALUES (?, 'shop', '90000001', 1500, 'PEN', 'test', 'request', ?, 'finance',"
                " TIMESTAMPTZ '2026-07-23 10:00:00-05', TIMESTAMPTZ '2026-07-24 10:00:00-05', CAST(? AS TIMESTAMPTZ))",
                [refund_id, status, completed],
            )
    run(home, "2026-07-24", "2026-08-03", groups=("alerts",))
    (alert,) = alerts(home, "REFUND_OVERDUE")
    assert (alert["alert_id"], alert["value"], alert["severity"]) == ("REFUND_OVERDUE|shop|2026-08-01", "2 refunds", "critical")
    assert alert["message"] == (
        "2 refund(s) approved and not paid within 3 business days (deadline 2026-07-31): R1 PEN 15.00 for CIP 90000001"
        " approved 2026-07-24, now approved; R3 PEN 15.00 for CIP 90000001 approved 2026-07-24, now paid."
    )


def test_refund_overdue_counts_submitted_refunds_and_moves_with_a_decreed_day_off(home):
    home.orders("A1,2026-07-20 10:00:00,paid,PEN,50.00,0.00,PagoEfectivo,,,\n")
    home.statements(stmt("90000001", "A1", "50.00", "2026-07-20T12:00:00-05:00") + "\n")
    run(home, "2026-07-20", "2026-07-20", groups=("ingestion", "reconciliation"))
    # approved Monday 20 July; 23 July is a holiday: due by Friday 24, overdue from Saturday 25
    with connect(home_lake(home.path)) as con:
        for refund_id, status, completed in (("S1", "submitted", None), ("P1", "paid", "2026-07-24 18:00:00-05"),
                                             ("P2", "paid", "2026-07-27 09:00:00-05")):
            con.execute(
                "INSERT INTO refunds (refund_id, store_id, cip, amount_cents, currency, reason, source, status, requested_by,"
                " requested_at, approved_at, completed_at) VALUES (?, 'shop', '90000001', 1000, 'PEN', 'test', 'request', ?, 'finance',"
                " TIMESTAMPTZ '2026-07-20 09:00:00-05', TIMESTAMPTZ '2026-07-20 11:00:00-05', CAST(? AS TIMESTAMPTZ))",
                [refund_id, status, completed],
            )
    run(home, "2026-07-20", "2026-07-31", groups=("alerts",))
    assert [(a["alert_id"], a["value"]) for a in alerts(home, "REFUND_OVERDUE")] == [("REFUND_OVERDUE|shop|2026-07-25", "2 refunds")]
    assert "P2 PEN 10.00 for CIP 90000001 approved 2026-07-20, now paid; S1 PEN 10.00" in alerts(home, "REFUND_OVERDUE")[0]["message"]

    # 22 July decreed a day off: due by Monday 27 (P2 paid that day is on time), overdue from the 28th
    home.config(extra_non_working_days=["2026-07-22"])
    run(home, "2026-07-20", "2026-07-20", groups=("ingestion", "reconciliation"))
    run(home, "2026-07-20", "2026-07-31", groups=("alerts",))
    (alert,) = alerts(home, "REFUND_OVERDUE")
    assert (alert["alert_id"], alert["value"]) == ("REFUND_OVERDUE|shop|2026-07-28", "1 refunds")
    assert alert["message"] == (
        "1 refund(s) approved and not paid within 3 business days (deadline 2026-07-27): S1 PEN 10.00 for CIP 90000001"
        " approved 2026-07-20, now submitted."
    )


def test_notification_mismatch_both_ways_after_the_cutoff(home):
    home.orders("\n".join(f"A{n},2026-07-14 09:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,," for n in range(1, 6)) + "\n")

    def notification(cip, ref, paid):
        return {"eventType": "cip.paid", "operationNumber": f"OP{cip}",
                "data": {"cip": cip, "currency": "PEN", "amount": "10.00", "paymentDate": paid, "transactionCode": ref}}

    home.drop("statements/shop/notifications.json", json.dumps([
        notification("90000001", "A1", "2026-07-14T12:00:00-05:00"),  # never in the statements
        notification("90000002", "A2", "2026-07-14T12:00:00-05:00"),  # in the statements: fine
        notification("90000004", "A4", "2026-07-16T12:00:00-05:00"),  # statements reach the 16th, cutoff the 17th: wait
    ]))
    home.statements("\n".join([
        stmt("90000002", "A2", "10.00", "2026-07-14T12:00:00-05:00"),
        stmt("90000003", "A3", "10.00", "2026-07-15T12:00:00-05:00"),  # paid, never notified
        stmt("90000005", "A5", "10.00", "2026-07-16T08:00:00-05:00", status="pending"),
    ]) + "\n")
    run(home, "2026-07-14", "2026-07-16")
    assert [(a["alert_id"], a["value"], a["message"]) for a in alerts(home, "NOTIFICATION_MISMATCH")] == [
        ("NOTIFICATION_MISMATCH|shop|2026-07-14", "1 CIPs",
         "1 CIP(s) paid on 2026-07-14 where notifications and statements disagree: CIP 90000001 notified paid, not paid in the statements."),
        ("NOTIFICATION_MISMATCH|shop|2026-07-15", "1 CIPs",
         "1 CIP(s) paid on 2026-07-15 where notifications and statements disagree: CIP 90000003 paid in the statements, never notified."),
    ]


def test_fx_rate_missing_fires_before_the_first_rate_and_resolves_when_one_arrives(home):
    home.orders(
        """\
        A1,2026-07-14 10:00:00,pending,USD,10.00,0.00,PagoEfectivo,,,
        A2,2026-07-16 10:00:00,pending,USD,10.00,0.00,PagoEfectivo,,,
        """
    )
    home.statements(stmt("90000001", "A1", "10.00", "2026-07-14T12:00:00-05:00", currency="USD") + "\n"
                    + stmt("90000002", "A2", "37.45", "2026-07-16T12:00:00-05:00", currency="PEN") + "\n")
    home.drop("fx/sbs_0715.csv", "date,currency,buy,sell\n2026-07-15,USD,3.740,3.745\n")
    run(home, "2026-07-14", "2026-07-16")
    (alert,) = alerts(home, "FX_RATE_MISSING")
    assert (alert["alert_id"], alert["value"]) == ("FX_RATE_MISSING|shop|2026-07-14", "1 payments")
    assert alert["message"] == "1 payment(s) on 2026-07-14 need an SBS rate that is not known (landing/fx): CIP 90000001 USD 10.00 needs USD."

    # delivered, then the rate arrives: the rerun marks it resolved (and the resolution is delivered)
    delivery.deliver_pending(lambda: connect(home_lake(home.path)), lambda text: None, AlertChannel())
    delivered_at = alerts(home, "FX_RATE_MISSING")[0]["delivered_at"]
    assert delivered_at is not None
    run(home, "2026-07-14", "2026-07-16")  # same inputs: the same alert, still delivered
    assert [(a["alert_id"], a["delivered_at"], a["resolved_at"]) for a in alerts(home, "FX_RATE_MISSING")] == [
        ("FX_RATE_MISSING|shop|2026-07-14", delivered_at, None)]
    home.drop("fx/sbs_0713.csv", "date,currency,buy,sell\n2026-07-13,USD,3.700,3.705\n")
    run(home, "2026-07-14", "2026-07-16")
    (resolved,) = alerts(home, "FX_RATE_MISSING")
    assert resolved["resolved_at"] is not None and resolved["delivered_at"] is None
    sent = []
    delivery.deliver_pending(lambda: connect(home_lake(home.path)), sent.append, AlertChannel())
    assert [s for s in sent if "FX_RATE_MISSING" in s] == [
        "pagorecon RESOLVED FX_RATE_MISSING shop 2026-07-14: 1 payment(s) on 2026-07-14 need an SBS rate that is not known"
        " (landing/fx): CIP 90000001 USD 10.00 needs USD. — condition cleared on rerun."
    ]


def test_an_undelivered_alert_whose_condition_cleared_is_withdrawn(home):
    home.orders("A1,2026-07-14 10:00:00,pending,USD,10.00,0.00,PagoEfectivo,,,\n")
    home.statements(stmt("90000001", "A1", "10.00", "2026-07-14T12:00:00-05:00", currency="USD") + "\n")
    run(home, "2026-07-14", "2026-07-14")
    assert ids(home, "FX_RATE_MISSING") == ["FX_RATE_MISSING|shop|2026-07-14"]
    home.drop("fx/sbs.csv", "date,currency,buy,sell\n2026-07-14,USD,3.740,3.745\n")
    run(home, "2026-07-14", "2026-07-14")
    assert ids(home, "FX_RATE_MISSING") == []


# --- delivery ---------------------------------------------------------------------------------


class Receiver:
    """A Slack-like webhook on 127.0.0.1: answers 500 to the first `failures` posts, then 200."""

    def __init__(self, failures: int):
        self.failures = failures
        self.bodies: list[dict] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.bodies.append(body)
                status = 500 if len(receiver.bodies) <= receiver.failures else 200
                receiver.statuses.append(status)
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"boom")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def seed_alert(home, message="Buyer ana.perez@example.pe paid CIP 90000001 twice."):
    with connect(home_lake(home.path)) as con:
        con.execute(open_schema())
        con.execute(
            "INSERT INTO alerts (alert_id, kind, store_id, business_date, severity, value, threshold, message, created_at)"
            " VALUES ('UNRECONCILED_HIGH|shop|2026-07-14', 'UNRECONCILED_HIGH', 'shop', DATE '2026-07-14', 'warning', '20.0%', '10%', ?, now())",
            [message],
        )


def open_schema():
    from pagorecon_dagster.warehouse.duckdb import schema_sql

    return schema_sql()


def tick(home, instance, sensor="alert_delivery"):
    """One evaluation of a sensor of the real definitions (built now: the webhook variable as set)."""
    sensor_def = build_definitions(load_settings(home.path)).resolve_sensor_def(sensor)
    return sensor_def(dg.build_sensor_context(instance=instance, resources={"pagorecon": PagoreconHome(home=str(home.path))}))


def requested(result) -> list[dg.RunRequest]:
    """The run requests of a tick (none when it skipped)."""
    if isinstance(result, dg.SkipReason):
        return []
    return [result] if isinstance(result, dg.RunRequest) else list(result)


def execute(home, request: dg.RunRequest, instance, ok=True):
    """Run what the sensor requested, as the daemon would: the job of the real definitions, its
    config and tags, on the same instance."""
    job = build_definitions(load_settings(home.path)).resolve_job_def(request.job_name)
    result = job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags, raise_on_error=False)
    assert result.success is ok
    return result


def deliver(home, instance, ok=True):
    """A delivery tick must request exactly one deliver_alerts run; it is executed."""
    (request,) = requested(tick(home, instance))
    assert request.job_name == "deliver_alerts"
    return execute(home, request, instance, ok=ok)


def run_log(result) -> str:
    """Every event message of the run, with the errors of its failures and retries."""
    errors = [getattr(e.event_specific_data, "error", None) for e in result.all_events]
    return "\n".join([str(e.message) for e in result.all_events] + [error.to_string() for error in errors if error])


@pytest.fixture
def quick_retries(monkeypatch):
    """The real RetryPolicy's attempts, without its waits."""
    monkeypatch.setattr(jobs, "RETRY_POLICY", dg.RetryPolicy(max_retries=jobs.RETRY_POLICY.max_retries, delay=0.01))


def test_the_delivery_sensor_only_reads_and_the_run_delivers_a_retried_webhook_masked(home, monkeypatch, quick_retries):
    seed_alert(home)
    with Receiver(failures=1) as receiver, dg.instance_for_test() as instance:
        monkeypatch.setenv(WEBHOOK_ENV, receiver.url)
        (request,) = requested(tick(home, instance))
        # the tick posted nothing and wrote nothing: it asked for a run
        assert (request.job_name, request.tags["pagorecon/alerts_pending"]) == ("deliver_alerts", "1")
        assert receiver.bodies == [] and alerts(home)[0]["delivered_at"] is None
        result = execute(home, request, instance)
        # the first attempt's 500 failed the op; the RetryPolicy's second attempt got through
        assert receiver.statuses == [500, 200]
        assert len([e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_RESTARTED]) == 1
        text = "pagorecon [warning] UNRECONCILED_HIGH shop 2026-07-14: Buyer a********@example.pe paid CIP 90000001 twice. (value 20.0%, threshold 10%)"
        assert receiver.bodies == [{"text": text}, {"text": text}]
        assert "secret-token" not in run_log(result)
        (alert,) = alerts(home)
        assert alert["delivered_at"] is not None and alert["delivery_error"] is None
        # delivered once: the next tick asks for nothing
        skipped = tick(home, instance)
        assert requested(skipped) == [] and skipped.skip_message == "no alert to deliver, every failed run recorded"
    assert receiver.bodies == [{"text": text}, {"text": text}]


def test_a_delivery_that_keeps_failing_fails_its_run_and_a_later_run_delivers_it(home, monkeypatch, quick_retries):
    seed_alert(home)
    with Receiver(failures=4) as receiver, dg.instance_for_test() as instance:
        monkeypatch.setenv(WEBHOOK_ENV, receiver.url)
        failed = deliver(home, instance, ok=False)
        assert receiver.statuses == [500, 500, 500, 500]  # the first attempt and the policy's 3 retries
        (alert,) = alerts(home)
        assert alert["delivered_at"] is None
        assert alert["delivery_error"].endswith("webhook: HTTP 500 boom")
        assert "secret-token" not in alert["delivery_error"] and "secret-token" not in run_log(failed)
        # the next tick asks for another delivery run, and nothing about the failed one
        deliver(home, instance)
        assert receiver.statuses == [500, 500, 500, 500, 200]
    (alert,) = alerts(home)
    assert alert["delivered_at"] is not None and alert["delivery_error"] is None
    assert ids(home, "RUN_FAILED") == []


def test_unreachable_webhook_keeps_the_alert_pending(home, monkeypatch, quick_retries):
    seed_alert(home)
    with Receiver(failures=0) as receiver:
        url = receiver.url
    monkeypatch.setenv(WEBHOOK_ENV, url)  # the server is gone: connection refused
    with dg.instance_for_test() as instance:
        failed = deliver(home, instance, ok=False)
    (alert,) = alerts(home)
    assert alert["delivered_at"] is None and alert["delivery_error"].endswith("webhook: ConnectionError")
    assert "secret-token" not in run_log(failed)


def test_without_a_webhook_the_log_is_the_delivery(home, monkeypatch):
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    seed_alert(home)
    logged = []
    delivery.deliver_pending(lambda: connect(home_lake(home.path)), logged.append, alert_channel())
    assert logged == ["pagorecon [warning] UNRECONCILED_HIGH shop 2026-07-14: Buyer a********@example.pe paid CIP 90000001 twice."
                      " (value 20.0%, threshold 10%)"]
    assert alerts(home)[0]["delivered_at"] is not None


def test_the_webhook_url_is_an_env_var_of_the_alert_channel_resource(monkeypatch):
    monkeypatch.setenv(WEBHOOK_ENV, "http://127.0.0.1:9/hooks/secret-token")
    channel = alert_channel()
    assert channel.has_webhook
    assert channel.webhook_url == dg.EnvVar(WEBHOOK_ENV)  # resolved when a run starts, shown by name in the UI
    monkeypatch.setenv(WEBHOOK_ENV, "  ")
    assert not alert_channel().has_webhook


def test_a_running_delivery_is_not_requested_again(home):
    seed_alert(home)
    with dg.instance_for_test() as instance:
        instance.add_run(dg.DagsterRun(job_name="deliver_alerts", run_id="0" * 8 + "-0000-4000-8000-" + "0" * 12,
                                       status=dg.DagsterRunStatus.STARTED))
        skipped = tick(home, instance)
    assert requested(skipped) == [] and skipped.skip_message == "1 alert(s) wait for the deliver_alerts run going"


# --- failed runs ------------------------------------------------------------------------------


def fail_a_run(home, instance):
    """A real run of the reconciliation that fails at its first step (an empty store list)."""
    job = job_for(home, ("ingestion", "reconciliation"))
    (home.path / "pagorecon.yaml").write_text("stores: []\n", encoding="utf-8")  # breaks every step
    failed = run(home, "2026-07-14", "2026-07-14", job=job, instance=instance, ok=False)
    home.config()
    return failed


def run_failure_tick(home, instance, failed):
    event = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failed_alert", dagster_instance=instance, dagster_run=failed.dagster_run, dagster_event=event,
    ).for_run_failure()
    return build_definitions(load_settings(home.path)).resolve_sensor_def("run_failed_alert")(context)


@pytest.mark.new_home  # the warehouse must not appear
def test_failed_run_becomes_a_run_failed_alert_once(home):
    home.orders("A1,2026-07-14 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,\n")
    with dg.instance_for_test() as instance:
        failed = fail_a_run(home, instance)
        request = run_failure_tick(home, instance, failed)
        # the sensor writes nothing: it asks for one run, keyed by the failed run so it is asked once
        assert not (home.path / "warehouse").exists()
        assert (request.job_name, request.run_key, request.run_config) == (
            "record_run_failure", f"RUN_FAILED|{failed.run_id}",
            {"ops": {"record_failed_runs": {"config": {"run_ids": [failed.run_id]}}}})
        execute(home, request, instance)
        (alert,) = alerts(home, "RUN_FAILED")
        assert (alert["alert_id"], alert["store_id"], alert["severity"], alert["value"]) == (
            f"RUN_FAILED|{failed.run_id}", "shop", "critical", failed.run_id)
        assert alert["message"].startswith(
            f"Run {failed.run_id} of job with_alerts (2026-07-14|shop .. 2026-07-14|shop) failed at step "
        )
        assert alert["message"].endswith("pagorecon.yaml: `stores` must be a non-empty list of stores")
        # recording it again (a second request, a catch-up) adds nothing
        execute(home, request, instance)
        assert ids(home, "RUN_FAILED") == [f"RUN_FAILED|{failed.run_id}"]
        # the delivery sensor finds it recorded: it asks only for its delivery
        deliver(home, instance)
        assert ids(home, "RUN_FAILED") == [f"RUN_FAILED|{failed.run_id}"]
        assert alerts(home, "RUN_FAILED")[0]["delivered_at"] is not None


def test_a_failed_run_the_failure_sensor_missed_is_caught_up_by_the_delivery_sensor(home):
    with dg.instance_for_test() as instance:
        failed = fail_a_run(home, instance)
        (request,) = requested(tick(home, instance))
        assert (request.job_name, request.run_config) == (
            "record_run_failure", {"ops": {"record_failed_runs": {"config": {"run_ids": [failed.run_id]}}}})
        execute(home, request, instance)
        assert ids(home, "RUN_FAILED") == [f"RUN_FAILED|{failed.run_id}"]
        # recorded: the next tick asks for its delivery and no second recording
        assert [r.job_name for r in requested(tick(home, instance))] == ["deliver_alerts"]


def test_failed_runs_of_the_alert_jobs_raise_no_alert_and_no_run(home, monkeypatch, quick_retries):
    seed_alert(home)
    with Receiver(failures=0) as receiver:
        url = receiver.url
    monkeypatch.setenv(WEBHOOK_ENV, url)  # nobody answers: the delivery run fails
    with dg.instance_for_test() as instance:
        failed_delivery = deliver(home, instance, ok=False)
        # a recording that cannot succeed (no such run) fails too
        failed_recording = execute(home, dg.RunRequest(job_name="record_run_failure", run_config={
            "ops": {"record_failed_runs": {"config": {"run_ids": ["no-such-run"]}}}}), instance, ok=False)
        assert "no run no-such-run in this Dagster instance" in run_log(failed_recording)
        for failed in (failed_delivery, failed_recording):
            skipped = run_failure_tick(home, instance, failed)
            assert isinstance(skipped, dg.SkipReason) and "not alerted" in skipped.skip_message
        # the catch-up does not pick them up either: only the pending alert is asked for
        assert [r.job_name for r in requested(tick(home, instance))] == ["deliver_alerts"]
    assert ids(home, "RUN_FAILED") == []
