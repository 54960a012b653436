"""The `payout_file` executor: a bank-transfer batch under archive/payouts/, bank confirmations
from landing/refund_confirmations/ matched back, a batch never written twice nor a refund put in
two batches. Overdue refunds are the REFUND_OVERDUE alert's (tests/test_alerts.py)."""

from __future__ import annotations

import datetime as dt
import stat

import dagster as dg
from refunds_fixtures import ACCOUNT, NOW

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.refunds import approval, payout_file, state
from pagorecon_dagster.refunds.payout import pay_out
from pagorecon_dagster.refunds.sensors import refund_payout_sensor
from pagorecon_dagster.resources import REFUND_PROVIDER, PagoreconHome, RefundProvider
from pagorecon_dagster.warehouse.duckdb import connect, home_lake


APPROVED_AT = NOW + dt.timedelta(hours=1)   # Monday 2026-07-20, 11:00 Lima
BATCH = "refund-payouts-2026-07-20-01.csv"
CONFIRMATION_HEADER = "refund_id,status,amount,currency,bank_reference,executed_at,detail\n"


def approve_requests(home) -> None:
    """A person approves two requests (they carry the payer's CCI); another records the CCI of one
    approved proposal, which a person then approves again."""
    settings = load_settings(home.path)
    luis, maria = approval.Identity("luis"), approval.Identity("maria")
    with connect(home_lake(home.path)) as con:
        for refund_id in ("shop-R-M1-OK", "shop-R-M3-A"):
            assert approval.approve(con, settings, refund_id, actor=luis, note=None, now=APPROVED_AT).ok
        assert approval.set_account(con, settings, "auto-shop-91000003-paid_cancelled_order", account="00298765432109876543",
                                    actor=maria, note=None, now=APPROVED_AT).ok
        assert approval.approve(con, settings, "auto-shop-91000003-paid_cancelled_order", actor=luis, note=None, now=APPROVED_AT).ok


def pay_by_file(home, at=APPROVED_AT):
    return pay_out(load_settings(home.path), executor="payout_file", clock=lambda: at)


def status(home, refund_id) -> tuple:
    (row,) = home.query("SELECT status, attempts, payout_batch, provider_reference FROM refunds WHERE refund_id = ?", [refund_id])
    return tuple(row.values())


def test_approved_refunds_with_an_account_go_into_one_bank_batch(taken_in):
    approve_requests(taken_in)
    summary = pay_by_file(taken_in)
    assert (summary.batched, summary.batches) == (3, [BATCH])
    path = taken_in.path / "archive" / "payouts" / BATCH
    assert path.read_text(encoding="utf-8") == (
        "refund_id,store_id,order_id,cip,beneficiary_document,beneficiary_account,currency,amount,reason\n"
        "auto-shop-91000003-paid_cancelled_order,shop,C1,91000003,42222222,00298765432109876543,PEN,80.00,PAID_CANCELLED_ORDER\n"
        f"shop-R-M1-OK,shop,#m1,92000001,5111-1111,{ACCOUNT},PEN,100.00,customer_request\n"
        f"shop-R-M3-A,shop,M3,92000005,55555555,{ACCOUNT},PEN,60.00,customer_request\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it carries documents and accounts in clear
    assert status(taken_in, "shop-R-M1-OK") == ("submitted", 1, BATCH, None)
    # the other approved proposals have no account yet: held, with what to do
    assert summary.held == [
        f"{rid}: no beneficiary account for the bank transfer; record it with `pagorecon refunds set-account`"
        for rid in ("auto-shop-91000002-duplicate_payment", "auto-shop-91000004-overpaid", "auto-shop-91000005-paid_cancelled_order",
                    "auto-shop-91000006-order_paid_other_method", "auto-shop-91000008-paid_cancelled_order")
    ]
    # a second pass the same day puts nothing in a second batch and leaves the file alone
    before = path.read_bytes()
    assert pay_by_file(taken_in, APPROVED_AT + dt.timedelta(hours=1)).batches == []
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [BATCH]


def test_a_batch_claimed_but_never_written_is_written_once_under_its_own_name(taken_in):
    approve_requests(taken_in)
    settings = load_settings(taken_in.path)
    batch, size = state.atomically(settings.lake, lambda con: payout_file.claim_batch(con, settings, now=APPROVED_AT))  # then the worker died
    assert (batch, size) == (BATCH, 3)
    assert not (taken_in.path / "archive" / "payouts").exists()
    summary = pay_by_file(taken_in, APPROVED_AT + dt.timedelta(hours=1))
    assert (summary.batches, summary.batched) == ([BATCH], 0)
    assert len((taken_in.path / "archive" / "payouts" / BATCH).read_text().splitlines()) == 4
    assert pay_by_file(taken_in, APPROVED_AT + dt.timedelta(hours=2)).batches == []
    assert status(taken_in, "shop-R-M3-A") == ("submitted", 1, BATCH, None)


def test_bank_confirmations_are_matched_back_once(taken_in):
    approve_requests(taken_in)
    pay_by_file(taken_in)
    taken_in.drop("refund_confirmations/bank-2026-07-21.csv", CONFIRMATION_HEADER
                  + "shop-R-M1-OK,paid,100.00,PEN,BCP-778899,2026-07-21 11:30:00,\n"
                  + "shop-R-M3-A,failed,60.00,PEN,BCP-778900,2026-07-21 11:31:00,cuenta cerrada de jose@mail.pe\n"
                  + "auto-shop-91000003-paid_cancelled_order,paid,8.00,PEN,BCP-778901,,\n"
                  + "shop-R-NOPE,paid,1.00,PEN,,,\n"
                  + "shop-R-M4-A,paid,10.00,PEN,,,\n"
                  + "shop-R-M1-OK,paid,1O0.00,PEN,,,\n")
    sensor = refund_payout_sensor(dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(),
                                                          resources={"pagorecon": PagoreconHome(home=str(taken_in.path)),
                                                                     REFUND_PROVIDER: RefundProvider()}))
    assert "confirmation_files=1" in sensor.tags["pagorecon/refunds_waiting"]

    summary = pay_by_file(taken_in, APPROVED_AT + dt.timedelta(days=1))
    assert summary.confirmations == {"applied": 2, "amount_mismatch": 1, "unknown_refund": 1, "not_submitted": 1, "bad_row": 1}
    paid = taken_in.query("SELECT * FROM refunds WHERE refund_id = 'shop-R-M1-OK'")[0]
    assert (paid["status"], paid["provider_reference"], paid["completed_at"]) == (
        "paid", "BCP-778899", dt.datetime(2026, 7, 21, 16, 30, tzinfo=dt.timezone.utc))
    failed = taken_in.query("SELECT * FROM refunds WHERE refund_id = 'shop-R-M3-A'")[0]
    assert (failed["status"], failed["last_error"]) == ("failed", "cuenta cerrada de j***@mail.pe")
    assert status(taken_in, "auto-shop-91000003-paid_cancelled_order")[0] == "submitted"
    lines = taken_in.query("SELECT line, outcome, detail FROM refund_confirmations ORDER BY line")
    assert [(r["line"], r["outcome"]) for r in lines] == [
        (2, "applied"), (3, "applied"), (4, "amount_mismatch"), (5, "unknown_refund"), (6, "not_submitted"), (7, "bad_row")]
    assert lines[2]["detail"] == "the bank says PEN 8.00, the refund is PEN 80.00"
    assert lines[4]["detail"] == "refund shop-R-M4-A is awaiting_approval, not in a bank-transfer batch: check with the bank"
    assert lines[5]["detail"].startswith("amount: '1O0.00' is not a plain decimal amount")
    (entry,) = taken_in.query("SELECT actor, why FROM audit_log WHERE entity_id = 'shop-R-M1-OK' AND action = 'paid'")
    assert entry == {"actor": "system:bank-confirmations",
                     "why": "landing/refund_confirmations/bank-2026-07-21.csv line 2: the bank paid it (reference BCP-778899)"}
    # the same file is not read twice; a corrected line in a new file is
    assert pay_by_file(taken_in, APPROVED_AT + dt.timedelta(days=2)).confirmations == {}
    taken_in.drop("refund_confirmations/bank-2026-07-22.csv", CONFIRMATION_HEADER
                  + "auto-shop-91000003-paid_cancelled_order,paid,80.00,PEN,BCP-778901,2026-07-22 10:00:00,\n"
                  + "shop-R-M1-OK,paid,100.00,PEN,BCP-778899,2026-07-21 11:30:00,\n")
    assert pay_by_file(taken_in, APPROVED_AT + dt.timedelta(days=2)).confirmations == {"applied": 1, "already_applied": 1}
    assert status(taken_in, "auto-shop-91000003-paid_cancelled_order") == ("paid", 1, BATCH, "BCP-778901")


def test_an_unreadable_confirmation_file_is_recorded_and_not_retried(taken_in):
    taken_in.drop("refund_confirmations/broken.csv", "refund_id,amount\nx,1.00\n")
    assert pay_by_file(taken_in).confirmations == {"unreadable_file": 1}
    (row,) = taken_in.query("SELECT line, outcome, detail FROM refund_confirmations")
    assert row == {"line": 0, "outcome": "unreadable_file",
                   "detail": "missing column(s) status, currency; expected refund_id, status, amount, currency, bank_reference, executed_at, detail"}
    assert pay_by_file(taken_in).confirmations == {}
