"""What comes in: proposals from refund-candidate recon items, requests from landing/refunds/,
each check accepted and rejected, and the automatic approval up to the store's limit."""

from __future__ import annotations

import datetime as dt

import pytest
from refunds_fixtures import NOW, REQUESTS, refunds_by_id

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.refunds.intake import intake
from pagorecon_dagster.warehouse.duckdb import connect, home_lake



# -- proposals -------------------------------------------------------------------------------------

def test_every_refund_candidate_is_proposed_once_for_its_excess_to_the_payer(taken_in_readonly):
    proposed = {r["refund_id"]: r for r in taken_in_readonly.query("SELECT * FROM refunds WHERE source = 'reconciliation'")}
    assert {rid: (r["order_id"], r["cip"], r["reason"], r["amount_cents"], r["currency"], r["beneficiary_document"])
            for rid, r in proposed.items()} == {
        "auto-shop-91000002-duplicate_payment": ("D1", "91000002", "DUPLICATE_PAYMENT", 10000, "PEN", "41111111"),
        "auto-shop-91000003-paid_cancelled_order": ("C1", "91000003", "PAID_CANCELLED_ORDER", 8000, "PEN", "42222222"),
        "auto-shop-91000004-overpaid": ("O1", "91000004", "OVERPAID", 3000, "PEN", "43333333"),
        "auto-shop-91000005-paid_cancelled_order": ("B1", "91000005", "PAID_CANCELLED_ORDER", 15000, "PEN", "44444444"),
        "auto-shop-91000010-paid_cancelled_order": ("B2", "91000010", "PAID_CANCELLED_ORDER", 15001, "PEN", "48888888"),
        "auto-shop-91000006-order_paid_other_method": ("X1", "91000006", "ORDER_PAID_OTHER_METHOD", 6000, "PEN", "45555555"),
        "auto-shop-91000007-paid_cancelled_order": ("U1", "91000007", "PAID_CANCELLED_ORDER", 5000, "USD", "46666666"),
        "auto-shop-91000008-paid_cancelled_order": ("U2", "91000008", "PAID_CANCELLED_ORDER", 3000, "USD", "47777777"),
        "auto-shop-91000009-paid_cancelled_order": ("N1", "91000009", "PAID_CANCELLED_ORDER", 2000, "PEN", None),
    }
    assert {r["requested_by"] for r in proposed.values()} == {"system:reconciliation"}


def test_proposals_are_approved_automatically_up_to_the_store_limit_in_pen(taken_in_readonly):
    refunds = refunds_by_id(taken_in_readonly)
    status = {rid: (r["status"], r["approved_by"]) for rid, r in refunds.items() if rid.startswith("auto-")}
    assert status == {
        "auto-shop-91000002-duplicate_payment": ("approved", "system:auto-approval"),
        "auto-shop-91000003-paid_cancelled_order": ("approved", "system:auto-approval"),
        "auto-shop-91000004-overpaid": ("approved", "system:auto-approval"),
        "auto-shop-91000005-paid_cancelled_order": ("approved", "system:auto-approval"),   # PEN 150.00 = the limit
        "auto-shop-91000010-paid_cancelled_order": ("awaiting_approval", None),            # PEN 150.01
        "auto-shop-91000006-order_paid_other_method": ("approved", "system:auto-approval"),
        "auto-shop-91000007-paid_cancelled_order": ("awaiting_approval", None),   # USD 50.00 x 3.745 = PEN 187.25
        "auto-shop-91000008-paid_cancelled_order": ("approved", "system:auto-approval"),   # USD 30.00 x 3.745 = PEN 112.35
        "auto-shop-91000009-paid_cancelled_order": ("rejected", None),
    }
    assert refunds["auto-shop-91000009-paid_cancelled_order"]["rejection_reason"] == "PAYER_UNKNOWN"
    assert refunds["auto-shop-91000005-paid_cancelled_order"]["approved_at"] == NOW
    why = {e["entity_id"]: e["why"] for e in taken_in_readonly.query("SELECT entity_id, why FROM audit_log WHERE action IN ('approve', 'await_approval')")}
    assert why["auto-shop-91000008-paid_cancelled_order"] == (
        "USD 30.00 x SBS sell 3.745 of 2026-07-13 = PEN 112.35 is within the store's auto-refund limit PEN 150.00")
    assert why["auto-shop-91000007-paid_cancelled_order"] == (
        "USD 50.00 x SBS sell 3.745 of 2026-07-13 = PEN 187.25 is above the store's auto-refund limit PEN 150.00: a person approves it")


def test_a_usd_proposal_waits_for_a_person_when_no_rate_is_known(refunds_reconciled):
    with connect(home_lake(refunds_reconciled.path)) as con:
        con.execute("DELETE FROM fx_rates")
        intake(con, load_settings(refunds_reconciled.path), now=NOW)
    (row,) = refunds_reconciled.query("SELECT status FROM refunds WHERE refund_id = 'auto-shop-91000008-paid_cancelled_order'")
    assert row["status"] == "awaiting_approval"


def test_taking_in_again_proposes_and_requests_nothing_twice(taken_in):
    before = taken_in.query("SELECT refund_id, status FROM refunds ORDER BY refund_id")
    audit_before = taken_in.query("SELECT count(*) AS n FROM audit_log")[0]["n"]
    with connect(home_lake(taken_in.path)) as con:
        summary = intake(con, load_settings(taken_in.path), now=NOW + dt.timedelta(hours=1))
    assert summary.total == 0
    assert taken_in.query("SELECT refund_id, status FROM refunds ORDER BY refund_id") == before
    assert taken_in.query("SELECT count(*) AS n FROM audit_log")[0]["n"] == audit_before
    assert len(before) == 9 + len(REQUESTS)


# -- requests: every check, accepted and rejected ----------------------------------------------------

REJECTED = {
    "shop-R-ORDER": "ORDER_UNKNOWN",
    "shop-R-CIP": "CIP_UNKNOWN",
    "shop-R-NOTFOR": "CIP_NOT_FOR_ORDER",
    "shop-R-ABOVEPAID": "AMOUNT_ABOVE_PAID",
    "shop-R-NOTPAID": "CIP_NOT_PAID",
    "shop-R-REVERSED": "CIP_REVERSED",
    "shop-R-CURRENCY": "CURRENCY_MISMATCH",
    "shop-R-ZERO": "AMOUNT_NOT_POSITIVE",
    "shop-R-PAYER": "BENEFICIARY_NOT_PAYER",
    "shop-R-M3-B": "AMOUNT_ABOVE_REFUNDABLE",
    "shop-R-M4-B": "DUPLICATE_OPEN_REFUND",
}
# Each passes the checks at their boundary: the order written `#m1`, a document written with a
# dash, the whole paid amount, exactly what is still refundable (a rejected refund does not count),
# a second open refund on a CIP for another reason.
ACCEPTED = ("shop-R-M1-OK", "shop-R-M3-A", "shop-R-M3-C", "shop-R-M4-A", "shop-R-M4-C")


@pytest.mark.parametrize("refund_id,code", sorted(REJECTED.items()))
def test_a_request_breaking_one_rule_is_rejected_with_exactly_its_code(taken_in_readonly, refund_id, code):
    refund = refunds_by_id(taken_in_readonly)[refund_id]
    assert (refund["status"], refund["rejection_reason"]) == ("rejected", code)
    assert refund["rejection_detail"].startswith(f"{code}: ")
    (entry,) = taken_in_readonly.query("SELECT actor, why, after_state FROM audit_log WHERE entity_id = ? AND action = 'reject'", [refund_id])
    assert entry["actor"] == "system:validation" and entry["why"] == refund["rejection_detail"]


@pytest.mark.parametrize("refund_id", ACCEPTED)
def test_a_request_passing_every_rule_waits_for_a_person(taken_in_readonly, refund_id):
    refund = refunds_by_id(taken_in_readonly)[refund_id]
    assert (refund["status"], refund["rejection_reason"], refund["approved_by"]) == ("awaiting_approval", None, None)
    assert (refund["source"], refund["requested_by"], refund["request_id"]) == ("request", "ana@tienda.pe", refund_id[len("shop-"):])


def test_rejection_details_name_the_numbers_and_mask_the_documents(taken_in_readonly):
    refunds = refunds_by_id(taken_in_readonly)
    assert refunds["shop-R-M3-B"]["rejection_detail"] == (
        "AMOUNT_ABOVE_REFUNDABLE: PEN 40.01 is more than is still refundable on CIP 92000005: paid PEN 100.00"
        " minus PEN 60.00 already refunded or in progress = PEN 40.00")
    assert refunds["shop-R-PAYER"]["rejection_detail"] == (
        "BENEFICIARY_NOT_PAYER: beneficiary document *****007 is not the payer's *****111")
    assert refunds["shop-R-ABOVEPAID"]["rejection_detail"] == (
        "AMOUNT_ABOVE_PAID: PEN 100.01 is more than CIP 92000001 paid (PEN 100.00)")


def test_a_request_with_several_problems_stores_every_code(taken_in_readonly):
    refund = refunds_by_id(taken_in_readonly)["shop-R-MANY"]
    assert refund["rejection_reason"] == "CIP_NOT_FOR_ORDER,CURRENCY_MISMATCH,BENEFICIARY_NOT_PAYER"
