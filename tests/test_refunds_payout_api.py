"""Exactly once through the `api` executor, proven against the sandbox provider's own ledger:
the provider times out after accepting, answers 500 then 200, the worker is killed between
submitting and recording, two workers run at once. Then the real Dagster job and its sensor, and
paid refunds showing on the refunds_reconciled items."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter

import dagster as dg
import pytest
import requests
from refunds_fixtures import NOW, materialize

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.definitions import build_definitions
from pagorecon_dagster.refunds import payout, state
from pagorecon_dagster.refunds.demo import run_demo_refunds
from pagorecon_dagster.refunds.provider_api import KEY_ENV, TIMEOUT_ENV, URL_ENV, ApiSettings
from pagorecon_dagster.refunds.sandbox_provider import SandboxRefundProvider
from pagorecon_dagster.refunds.sensors import refund_payout_sensor
from pagorecon_dagster.resources import REFUND_PROVIDER, PagoreconHome, RefundProvider
from pagorecon_dagster.warehouse.duckdb import connect, home_lake


# The six refunds the intake approved automatically (test_refunds_scenario).
AUTO_APPROVED = (
    "auto-shop-91000002-duplicate_payment",
    "auto-shop-91000003-paid_cancelled_order",
    "auto-shop-91000004-overpaid",
    "auto-shop-91000005-paid_cancelled_order",
    "auto-shop-91000006-order_paid_other_method",
    "auto-shop-91000008-paid_cancelled_order",
)
FIRST = "auto-shop-91000002-duplicate_payment"   # claimed first (approved at the same instant: by id)
LATER = NOW + dt.timedelta(hours=1)


@pytest.fixture
def provider():
    with SandboxRefundProvider(stall_seconds=2.0) as running:
        yield running


def fast(provider, **overrides) -> ApiSettings:
    return ApiSettings(url=provider.url, key=provider.api_key, **{"timeout_seconds": 0.5, "backoff_seconds": 0.01, **overrides})


def pay(home, provider, clock=lambda: LATER, **overrides):
    return payout.pay_out(load_settings(home.path), executor="api", api=fast(provider, **overrides), clock=clock)


def statuses(home) -> dict[str, tuple]:
    return {r["refund_id"]: (r["status"], r["attempts"])
            for r in home.query("SELECT refund_id, status, attempts FROM refunds WHERE approved_by IS NOT NULL")}


def assert_paid_exactly_once(home, provider, refund_ids=AUTO_APPROVED) -> None:
    """The provider's ledger holds one payout per refund, and the warehouse agrees with it."""
    ledger = provider.ledger()
    assert Counter(e["idempotency_key"] for e in ledger) == Counter({rid: 1 for rid in refund_ids})
    by_key = {e["idempotency_key"]: e for e in ledger}
    paid = {r["refund_id"]: r for r in home.query("SELECT * FROM refunds WHERE status = 'paid'")}
    assert set(paid) == set(refund_ids)
    for rid, refund in paid.items():
        assert refund["provider_reference"] == by_key[rid]["reference"]
        assert (by_key[rid]["amount"], by_key[rid]["currency"]) == (f"{refund['amount_cents'] // 100}.{refund['amount_cents'] % 100:02d}", refund["currency"])
        assert refund["completed_at"] is not None and refund["executor"] == "api"


def test_approved_refunds_are_paid_once_each_and_the_audit_log_says_so(taken_in, provider):
    summary = pay(taken_in, provider)
    assert (summary.paid, summary.failed, summary.unknown) == (6, 0, 0)
    assert_paid_exactly_once(taken_in, provider)
    assert all(provider.seen("POST", key) and len(provider.seen("POST", key)) == 1 for key in AUTO_APPROVED)
    assert statuses(taken_in)[FIRST] == ("paid", 1)
    actions = [(e["action"], e["actor"]) for e in taken_in.query("SELECT * FROM audit_log WHERE entity_id = ? ORDER BY seq", [FIRST])]
    assert actions == [("create", "system:intake"), ("approve", "system:auto-approval"),
                       ("submit", "system:payout-api"), ("paid", "system:payout-api")]
    # nothing left: a second pass sends nothing
    assert pay(taken_in, provider).paid == 0
    assert len(provider.seen("POST")) == 6


def test_provider_times_out_after_accepting(taken_in, provider):
    provider.inject("POST", "timeout")  # accepts FIRST, then answers only after the client gave up
    summary = pay(taken_in, provider)
    assert summary.paid == 6
    assert_paid_exactly_once(taken_in, provider)
    # the unknown outcome was resolved by asking, not by sending again
    assert [s.status for s in provider.seen(key=FIRST) if s.method == "GET"] == [404, 200]  # before the POST, after it
    assert statuses(taken_in)[FIRST] == ("paid", 1)


def test_provider_answers_500_then_200(taken_in, provider):
    provider.inject("POST", "500")
    summary = pay(taken_in, provider)
    assert summary.paid == 6
    assert_paid_exactly_once(taken_in, provider)
    assert [(s.method, s.status) for s in provider.seen(key=FIRST)] == [("GET", 404), ("POST", 500), ("GET", 404), ("POST", 201)]


def test_provider_accepts_then_answers_500(taken_in, provider):
    provider.inject("POST", "500_after_accept")
    pay(taken_in, provider)
    assert_paid_exactly_once(taken_in, provider)
    assert [(s.method, s.status) for s in provider.seen(key=FIRST)] == [("GET", 404), ("POST", 500), ("GET", 200)]


def test_a_provider_that_never_answers_leaves_the_refund_submitted_and_stops_the_pass(taken_in, provider):
    provider.inject("POST", "500", "500", "500")
    provider.inject("GET", "500", "500")
    summary = pay(taken_in, provider, max_attempts=3)
    assert (summary.paid, summary.unknown) == (0, 1)
    (first,) = taken_in.query("SELECT status, attempts, last_error FROM refunds WHERE refund_id = ?", [FIRST])
    assert (first["status"], first["attempts"]) == ("submitted", 1)
    assert first["last_error"] == "no answer after 3 attempts; last: POST /refunds: HTTP 500"  # after two GETs answered 500
    assert sum(1 for s in statuses(taken_in).values() if s[0] == "approved") == 5  # not claimed while the provider is down
    assert provider.ledger() == []


SUBPROCESS = textwrap.dedent("""
    import sys
    from pagorecon_dagster.config import load_settings
    from pagorecon_dagster.refunds.payout import pay_out
    from pagorecon_dagster.resources import refund_provider_from_environment
    summary = pay_out(load_settings(sys.argv[1]), executor="api",
                      api=refund_provider_from_environment().api_settings(backoff_seconds=0.01))
    print(summary.paid, flush=True)
""")


def worker(home, provider, timeout: float) -> subprocess.Popen:
    env = {**os.environ, URL_ENV: provider.url, KEY_ENV: provider.api_key, TIMEOUT_ENV: str(timeout)}
    return subprocess.Popen([sys.executable, "-c", SUBPROCESS, str(home.path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_worker_killed_between_submitting_and_recording(taken_in, provider):
    provider.stall_seconds = 30.0
    provider.inject("POST", "timeout")  # the provider pays FIRST and keeps the worker waiting
    process = worker(taken_in, provider, timeout=20.0)
    try:
        wait_for(lambda: provider.payouts(FIRST) == 1)
        # while it waits on the provider the worker holds no warehouse connection: we can open it
        with connect(home_lake(taken_in.path), read_only=True) as con:
            assert con.execute("SELECT status, attempts FROM refunds WHERE refund_id = ?", [FIRST]).fetchone() == ("submitted", 1)
    finally:
        process.kill()
        process.wait()

    # a pass right after: FIRST may still be in a worker's hands, so it is left alone
    pay(taken_in, provider, clock=lambda: dt.datetime.now(dt.timezone.utc))
    assert statuses(taken_in)[FIRST] == ("submitted", 1)
    # only the worker's own status question: no GET, no second POST (the stalled POST is logged when answered)
    assert [(s.method, s.status) for s in provider.seen(key=FIRST)] == [("GET", 404)]
    # once the grace is over, the next pass asks the provider first and records its answer
    pay(taken_in, provider, clock=lambda: dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=301))
    assert [(s.method, s.status) for s in provider.seen(key=FIRST) if s.method == "GET"] == [("GET", 404), ("GET", 200)]
    assert statuses(taken_in)[FIRST] == ("paid", 1)
    assert_paid_exactly_once(taken_in, provider)


def test_a_refund_claimed_but_never_sent_is_sent_again_with_the_same_key(taken_in, provider):
    claimed = state.atomically(home_lake(taken_in.path), lambda con: payout._claim_next(con, NOW))  # then the worker died
    assert (claimed["refund_id"], claimed["status"], claimed["attempts"]) == (FIRST, "submitted", 1)
    pay(taken_in, provider, clock=lambda: NOW + dt.timedelta(seconds=301))
    assert [(s.method, s.status) for s in provider.seen(key=FIRST)] == [("GET", 404), ("POST", 201)]
    assert statuses(taken_in)[FIRST] == ("paid", 2)
    assert [e["action"] for e in taken_in.query("SELECT action FROM audit_log WHERE entity_id = ? ORDER BY seq", [FIRST])] == [
        "create", "approve", "submit", "resubmit", "paid"]
    assert_paid_exactly_once(taken_in, provider)


def test_two_workers_in_one_process_at_once(taken_in, provider):
    provider.latency_seconds = 0.05  # every POST takes a while, so the two passes overlap
    results, errors = [], []

    def run():
        try:
            results.append(pay(taken_in, provider))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(results) == 2 and sum(r.paid for r in results) == 6
    assert_paid_exactly_once(taken_in, provider)
    # the claim, not only the idempotency key, kept them apart: each refund was sent once
    assert Counter(s.idempotency_key for s in provider.seen("POST")) == Counter({rid: 1 for rid in AUTO_APPROVED})


def test_two_worker_processes_at_once(taken_in, provider):
    provider.latency_seconds = 0.1
    processes = [worker(taken_in, provider, timeout=5.0) for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert sum(int(out.strip()) for out, _ in outputs) == 6
    assert_paid_exactly_once(taken_in, provider)
    assert Counter(s.idempotency_key for s in provider.seen("POST")) == Counter({rid: 1 for rid in AUTO_APPROVED})


def test_the_providers_idempotency_key_is_the_second_line(provider):
    body = {"refund_id": "r1", "store_id": "shop", "order_id": "A1", "cip": "1", "amount": "10.00", "currency": "PEN",
            "reason": "x", "beneficiary": {"document_number": "12345678", "account": None}}
    headers = {"Authorization": f"Bearer {provider.api_key}", "Idempotency-Key": "r1"}
    first = requests.post(f"{provider.url}/refunds", json=body, headers=headers, timeout=5)
    again = requests.post(f"{provider.url}/refunds", json=body, headers=headers, timeout=5)
    other = requests.post(f"{provider.url}/refunds", json={**body, "amount": "11.00"}, headers=headers, timeout=5)
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert first.json()["id"] == again.json()["id"] == "SBX-000001"
    assert provider.payouts("r1") == 1
    unauthorized = requests.get(f"{provider.url}/refunds/r1", headers={"Authorization": "Bearer wrong"}, timeout=5)
    assert unauthorized.status_code == 401


def test_provider_refusal_fails_the_refund_and_nothing_is_paid(taken_in, provider):
    provider.outcomes[FIRST] = "failed"
    summary = pay(taken_in, provider)
    assert (summary.paid, summary.failed) == (5, 1)
    (first,) = taken_in.query("SELECT status, last_error, provider_reference FROM refunds WHERE refund_id = ?", [FIRST])
    assert (first["status"], first["last_error"], first["provider_reference"]) == ("failed", "beneficiary account closed", "SBX-000001")
    assert provider.payouts(FIRST) == 0


def test_processing_refunds_are_asked_about_never_sent_again(taken_in, provider):
    provider.default_status = "processing"
    summary = pay(taken_in, provider)
    assert (summary.paid, summary.processing) == (0, 6)
    assert statuses(taken_in)[FIRST] == ("submitted", 1)
    provider.settle(FIRST)
    summary = pay(taken_in, provider)
    assert (summary.paid, summary.processing) == (1, 5)
    assert statuses(taken_in)[FIRST] == ("paid", 1)
    assert [s.method for s in provider.seen(key=FIRST)] == ["GET", "POST", "GET"]


def test_refused_credentials_stop_the_pass_with_the_env_var_named_and_no_secret(taken_in, provider):
    settings = load_settings(taken_in.path)
    with pytest.raises(payout.PayoutError) as raised:
        payout.pay_out(settings, executor="api", api=ApiSettings(url=provider.url, key="not-the-key"), clock=lambda: LATER)
    assert str(raised.value) == (f"refund {FIRST}: GET /refunds/{FIRST}: the provider refused the credentials (HTTP 401); "
                                 "check $PAGORECON_REFUND_API_KEY")
    assert "not-the-key" not in repr(ApiSettings(url=provider.url, key="not-the-key"))
    assert statuses(taken_in)[FIRST] == ("submitted", 1)


# -- Dagster: the sensor starts the job; paid refunds reach the reconciliation -------------------------

def test_sensor_starts_the_job_that_pays_and_reconciliation_shows_the_refunds(taken_in, provider, monkeypatch):
    monkeypatch.delenv("PAGORECON_REFUND_EXECUTOR", raising=False)
    instance = dg.DagsterInstance.ephemeral()
    sandbox = RefundProvider(url=provider.url, key=provider.api_key)  # a URL and no executor: the api executor
    resources = {"pagorecon": PagoreconHome(home=str(taken_in.path)), REFUND_PROVIDER: sandbox}

    request = refund_payout_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert isinstance(request, dg.RunRequest)
    assert request.tags["pagorecon/refunds_waiting"] == "approved=6"

    job = build_definitions(load_settings(taken_in.path), {REFUND_PROVIDER: sandbox}).resolve_job_def("refund_payout")
    result = job.execute_in_process(instance=instance, run_config={"ops": {"refund_payouts": {"config": {"backoff_seconds": 0.01}}}})
    assert result.success
    (materialization,) = [m for m in result.asset_materializations_for_node("refund_payouts")]
    assert materialization.metadata["paid"].value == 6 and materialization.metadata["executor"].text == "api"
    assert_paid_exactly_once(taken_in, provider)

    skipped = refund_payout_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert isinstance(skipped, dg.SkipReason) and skipped.skip_message == "no refund is waiting"

    materialize(taken_in, "recon_items", "recon_daily_summary", partition="2026-07-14|shop")
    items = {i["cip"]: i for i in taken_in.query("SELECT cip, status, refunded_cents FROM recon_items")}
    assert items["91000002"]["refunded_cents"] == 10000 and items["91000002"]["status"] == "DUPLICATE_PAYMENT"
    assert items["91000004"]["refunded_cents"] == 3000
    assert items["92000001"]["refunded_cents"] == 0
    summary = {(s["currency"], s["status"]): s["refunded_cents"]
               for s in taken_in.query("SELECT currency, status, refunded_cents FROM recon_daily_summary")}
    assert summary[("PEN", "PAID_CANCELLED_ORDER")] == 8000 + 15000
    assert summary[("USD", "PAID_CANCELLED_ORDER")] == 3000


def test_the_demo_pays_the_auto_approved_refunds_through_a_sandbox_provider(taken_in, monkeypatch):
    for name in (URL_ENV, KEY_ENV, "PAGORECON_REFUND_EXECUTOR"):
        monkeypatch.delenv(name, raising=False)
    lines = run_demo_refunds(load_settings(taken_in.path), dg.DagsterInstance.ephemeral())
    assert lines[0].endswith("the sandbox provider made 6 payout(s)):") and "FAILED" not in lines[0]
    assert "  awaiting_approval      7  PEN 370.01, USD 50.00" in lines
    assert "  paid                   6  PEN 420.00, USD 30.00" in lines
    assert lines[-1] == ("  a person decides: pagorecon refunds show auto-shop-91000010-paid_cancelled_order; "
                         "pagorecon refunds approve auto-shop-91000010-paid_cancelled_order --note <why> "
                         "(as an account on the approvers roster of pagorecon.yaml)")
    assert URL_ENV not in os.environ  # the sandbox's address does not outlive the demo
