"""Paying out safely when the provider says "later" or the warehouse is older than the provider:
408/425/429 are retried after `Retry-After` (seconds or an HTTP-date, bounded), a refusal after an
unanswered attempt is settled by asking for the refund's status, every refund's status is asked
before its first POST (a restored backup never pays twice), and the `payout_file` executor never
puts a refund already in an archived batch into a second one. All against the sandbox provider
over HTTP on loopback."""

from __future__ import annotations

import datetime as dt
import email.utils
import shutil
import time
from collections import Counter

import pytest
from refunds_fixtures import NOW
from test_refunds_payout_api import AUTO_APPROVED, FIRST, LATER, assert_paid_exactly_once, fast, pay, statuses, wait_for
from test_refunds_payout_file import BATCH, approve_requests, pay_by_file, status

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.refunds import approval, payout, state
from pagorecon_dagster.refunds.approval import Identity
from pagorecon_dagster.refunds.provider_api import PAID, UNKNOWN, RefundApiClient, payload
from pagorecon_dagster.refunds.sandbox_provider import SandboxRefundProvider
from pagorecon_dagster.warehouse.duckdb import connect, home_lake
from pagorecon_dagster.warehouse.lake import close_all

REFUND = {"refund_id": "r-1", "store_id": "shop", "order_id": "A1", "cip": "90000001", "amount_cents": 1250,
          "currency": "PEN", "reason": "duplicate", "beneficiary_document": "41111111", "beneficiary_account": None}


@pytest.fixture
def provider():
    with SandboxRefundProvider(stall_seconds=2.0) as running:
        yield running


def calls(provider, key):
    return [(s.method, s.status) for s in provider.seen(key=key)]


@pytest.mark.parametrize("code", ["408", "425", "429"])
def test_retry_later_answers_are_retried_after_retry_after_seconds(provider, code):
    provider.retry_after = "7"
    provider.inject("POST", code)
    slept = []
    outcome = RefundApiClient(fast(provider), sleep=slept.append).submit(REFUND)
    assert outcome.status == PAID and provider.payouts("r-1") == 1
    assert calls(provider, "r-1") == [("GET", 404), ("POST", int(code)), ("POST", 201)]
    assert slept == [7.0]


def test_retry_after_as_an_http_date_is_honoured_also_on_the_status_question(provider):
    provider.retry_after = email.utils.format_datetime(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=20), usegmt=True)
    provider.inject("GET", "429")
    slept = []
    outcome = RefundApiClient(fast(provider), sleep=slept.append).submit(REFUND)
    assert outcome.status == PAID
    assert calls(provider, "r-1") == [("GET", 429), ("GET", 404), ("POST", 201)]
    (waited,) = slept
    assert 17.0 <= waited <= 20.0


def test_the_wait_really_happens_between_the_429_and_the_next_call(taken_in, provider):
    provider.retry_after = "1"
    provider.inject("POST", "429")
    summary = pay(taken_in, provider)
    assert (summary.paid, summary.failed) == (6, 0)
    assert_paid_exactly_once(taken_in, provider)
    assert statuses(taken_in)[FIRST] == ("paid", 1)
    limited, after = [s for s in provider.seen(key=FIRST) if s.method == "POST"]
    assert (limited.status, after.status) == (429, 201) and after.at - limited.at >= 1.0


def test_a_retry_after_beyond_the_bound_ends_the_pass_and_fails_nothing(taken_in, provider):
    provider.retry_after = "3600"
    provider.inject("POST", "429")
    started = time.monotonic()
    summary = pay(taken_in, provider)
    assert time.monotonic() - started < 10
    assert (summary.paid, summary.failed, summary.unknown) == (0, 0, 1)
    (first,) = taken_in.query("SELECT status, attempts, last_error FROM refunds WHERE refund_id = ?", [FIRST])
    assert (first["status"], first["attempts"]) == ("submitted", 1)
    assert first["last_error"] == ("POST /refunds: HTTP 429, the provider asks to retry after 3600 s, "
                                   "more than the 60 s a pass waits; asked again on a later run")
    assert Counter(s[0] for s in statuses(taken_in).values()) == Counter({"approved": 5, "submitted": 1})
    assert provider.ledger() == []
    # a later pass, once the grace is over: status first (none), then the same key again
    pay(taken_in, provider, clock=lambda: LATER + dt.timedelta(seconds=301))
    assert_paid_exactly_once(taken_in, provider)
    assert calls(provider, FIRST) == [("GET", 404), ("POST", 429), ("GET", 404), ("POST", 201)]


def test_a_429_to_the_status_question_of_a_processing_refund_does_not_fail_it(taken_in, provider):
    provider.default_status = "processing"
    pay(taken_in, provider)
    provider.settle(FIRST)
    provider.retry_after = "3600"
    provider.inject("GET", "429")
    summary = pay(taken_in, provider)
    assert summary.failed == 0
    assert statuses(taken_in)[FIRST] == ("submitted", 1)
    pay(taken_in, provider)
    assert statuses(taken_in)[FIRST] == ("paid", 1)


def test_a_refusal_after_a_timeout_is_settled_by_the_refunds_status(taken_in, provider):
    # The first POST stalls past the client's timeout and is accepted only then; meanwhile the
    # provider has no record (GET 404) and refuses the same key as "in progress" (409).
    provider.stall_seconds = 1.5
    provider.inject("POST", "timeout_before_accept")
    summary = pay(taken_in, provider)
    assert (summary.paid, summary.failed, summary.unknown) == (0, 0, 1)
    assert calls(provider, FIRST) == [("GET", 404), ("GET", 404), ("POST", 409), ("GET", 404)]
    assert statuses(taken_in)[FIRST] == ("submitted", 1)
    wait_for(lambda: provider.payouts(FIRST) == 1)
    pay(taken_in, provider, clock=lambda: LATER + dt.timedelta(seconds=301))
    assert_paid_exactly_once(taken_in, provider)
    assert statuses(taken_in)[FIRST] == ("paid", 1)


def test_a_restored_backup_never_pays_twice(taken_in, provider):
    """The provider paid FIRST and failed the second before the warehouse was restored from a
    backup in which both are still only approved: their outcomes are recorded, nothing is sent."""
    second = AUTO_APPROVED[1]
    refunds = {r["refund_id"]: r for r in taken_in.query("SELECT * FROM refunds")}
    paid_before = provider.know(FIRST, payload(refunds[FIRST]))
    provider.know(second, payload(refunds[second]), status="failed")
    summary = pay(taken_in, provider)
    assert (summary.paid, summary.failed) == (5, 1)
    assert calls(provider, FIRST) == [("GET", 200)] and calls(provider, second) == [("GET", 200)]
    (first,) = taken_in.query("SELECT status, provider_reference FROM refunds WHERE refund_id = ?", [FIRST])
    assert (first["status"], first["provider_reference"]) == ("paid", paid_before["id"])
    assert statuses(taken_in)[second][0] == "failed"
    assert_paid_exactly_once(taken_in, provider, [r for r in AUTO_APPROVED if r != second])


def test_a_refund_in_an_archived_batch_is_never_put_in_a_second_one(taken_in):
    approve_requests(taken_in)
    warehouse = taken_in.path / "warehouse"
    backup = taken_in.path.parent / "backup"
    close_all()
    shutil.copytree(warehouse, backup)
    assert pay_by_file(taken_in).batches == [BATCH]
    written = (taken_in.path / "archive" / "payouts" / BATCH).read_bytes()
    close_all()
    shutil.rmtree(warehouse)
    shutil.copytree(backup, warehouse)  # restored: the three refunds are approved again
    with connect(home_lake(taken_in.path)) as con:     # and one more is approved since
        assert approval.approve(con, load_settings(taken_in.path), "shop-R-M3-C", actor=Identity("luis"), note=None, now=NOW + dt.timedelta(hours=2)).ok

    summary = pay_by_file(taken_in)
    assert summary.batches == ["refund-payouts-2026-07-20-02.csv"]  # a new name: the archived file is kept
    assert (taken_in.path / "archive" / "payouts" / BATCH).read_bytes() == written
    assert (taken_in.path / "archive" / "payouts" / summary.batches[0]).read_text(encoding="utf-8").splitlines()[1:] == [
        "shop-R-M3-C,shop,M3,92000005,55555555,00212345678901234567,PEN,40.00,late_delivery"]
    for refund_id in ("shop-R-M1-OK", "shop-R-M3-A", "auto-shop-91000003-paid_cancelled_order"):
        assert status(taken_in, refund_id) == ("submitted", 1, BATCH, None)
    (entry,) = taken_in.query("SELECT why FROM audit_log WHERE entity_id = 'shop-R-M1-OK' AND action = 'submit'")
    assert entry["why"] == (f"already in bank-transfer batch archive/payouts/{BATCH} (written before the warehouse "
                            "was restored?): not put in a second batch")
    assert pay_by_file(taken_in).batches == []
