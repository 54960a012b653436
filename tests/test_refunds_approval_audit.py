"""Approval by a person (the API, with the identity the CLI takes from the OS), masked output of
`pagorecon refunds ...`, and the tamper-evident audit log (`pagorecon refunds verify-audit`)."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
from refunds_fixtures import NOW, materialize

from pagorecon_dagster.cli import main
from pagorecon_dagster.config import load_settings
from pagorecon_dagster.refunds import approval
from pagorecon_dagster.refunds.approval import Identity
from pagorecon_dagster.refunds.audit import entry_hash
from pagorecon_dagster.refunds.intake import intake
from pagorecon_dagster.refunds.payout import pay_out
from pagorecon_dagster.warehouse.duckdb import connect, home_lake


LATER = NOW + dt.timedelta(hours=2)
ANA, LUIS, MARIA = Identity("ana"), Identity("luis"), Identity("maria")


def cli(home, *args) -> int:
    return main(["--home", str(home.path), "refunds", *args])


def act(home, what: str, refund_id: str, actor: Identity, **kwargs) -> approval.Decision:
    with connect(home_lake(home.path)) as con:
        return getattr(approval, what)(con, load_settings(home.path), refund_id, actor=actor, now=LATER,
                                       **{"note": None, **kwargs})


def refund(home, refund_id: str) -> dict:
    (row,) = home.query("SELECT * FROM refunds WHERE refund_id = ?", [refund_id])
    return row


def test_the_requester_cannot_approve_another_person_can_and_it_is_audited(taken_in):
    refused = act(taken_in, "approve", "shop-R-M1-OK", ANA)   # filed as ana@tienda.pe
    assert (refused.ok, refused.message) == (False, "ana requested refund shop-R-M1-OK: another approver must approve it")
    assert refund(taken_in, "shop-R-M1-OK")["status"] == "awaiting_approval"

    done = act(taken_in, "approve", "shop-R-M1-OK", LUIS, note="voucher checked")
    assert (done.ok, done.message) == (True, "refund shop-R-M1-OK approved by luis")
    approved = refund(taken_in, "shop-R-M1-OK")
    assert (approved["status"], approved["approved_by"]) == ("approved", "luis")
    (entry,) = taken_in.query("SELECT * FROM audit_log WHERE entity_id = 'shop-R-M1-OK' AND action = 'approve'")
    assert (entry["actor"], entry["why"]) == ("luis", "voucher checked")
    before, after = json.loads(entry["before_state"]), json.loads(entry["after_state"])
    assert (before["status"], after["status"], after["approved_by"]) == ("awaiting_approval", "approved", "luis")
    # personal data never enters the log in clear
    assert (after["beneficiary_document"], after["beneficiary_account"]) == ("******111", "*****************567")
    assert "51111111" not in entry["after_state"] and "5111-1111" not in entry["after_state"]


def test_only_a_refund_awaiting_approval_can_be_approved_and_only_by_a_person(taken_in):
    assert "is approved; only a refund awaiting approval can be approved" in act(
        taken_in, "approve", "auto-shop-91000002-duplicate_payment", LUIS).message
    assert "is not on the `approvers` roster" in act(taken_in, "approve", "shop-R-M3-A", Identity("system:me")).message
    assert act(taken_in, "approve", "nope", LUIS).message == "no refund 'nope'"
    assert refund(taken_in, "shop-R-M3-A")["status"] == "awaiting_approval"


def test_reject_needs_a_note_and_can_withdraw_an_approved_refund_not_yet_sent(taken_in):
    assert "--note is required" in act(taken_in, "reject", "shop-R-M3-A", LUIS, note=" ").message
    assert act(taken_in, "reject", "auto-shop-91000004-overpaid", LUIS, note="customer keeps the credit").ok
    withdrawn = refund(taken_in, "auto-shop-91000004-overpaid")
    assert (withdrawn["status"], withdrawn["rejection_reason"], withdrawn["rejection_detail"]) == (
        "rejected", "REJECTED_BY_APPROVER", "customer keeps the credit")
    assert "is rejected; only a refund awaiting approval or approved and not yet submitted can be rejected" in act(
        taken_in, "reject", "auto-shop-91000004-overpaid", LUIS, note="again").message


def test_a_refund_is_checked_again_at_approval_and_a_reversed_cip_is_never_paid(taken_in):
    # after the intake the bank reverses CIP 92000001 (awaiting approval) and 91000003 (auto-approved)
    taken_in.statements(
        "92000001,M1,,reversed,PEN,100.00,,,2026-07-14T09:30:00-05:00,,2026-07-14T10:00:00-05:00,BCP,DNI,51111111,\n"
        "91000003,C1,,reversed,PEN,80.00,,,2026-07-14T09:30:00-05:00,,2026-07-14T10:00:00-05:00,BCP,DNI,42222222,\n",
        name="statement-2.csv",
    )
    materialize(taken_in, "statement_rows", "payments")
    decision = act(taken_in, "approve", "shop-R-M1-OK", LUIS)
    assert not decision.ok
    assert "no longer passes its checks and was rejected: CIP_REVERSED: CIP 92000001 was paid and then reversed" in decision.message
    rejected = refund(taken_in, "shop-R-M1-OK")
    assert (rejected["status"], rejected["rejection_reason"]) == ("rejected", "CIP_REVERSED")
    (entry,) = taken_in.query("SELECT actor, why FROM audit_log WHERE entity_id = 'shop-R-M1-OK' AND action = 'reject'")
    assert entry["actor"] == "luis" and entry["why"].startswith("re-checked at approval: CIP_REVERSED")

    summary = pay_out(load_settings(taken_in.path), executor="payout_file", clock=lambda: LATER)
    assert "auto-shop-91000003-paid_cancelled_order: its CIP is no longer paid (reversed?); reject it" in summary.held
    assert refund(taken_in, "auto-shop-91000003-paid_cancelled_order")["status"] == "approved"


def test_set_account_records_a_cci_for_the_bank_transfer(taken_in):
    assert "20-digit interbank account code" in act(taken_in, "set_account", "auto-shop-91000002-duplicate_payment", LUIS,
                                                    account="123").message
    assert act(taken_in, "set_account", "auto-shop-91000002-duplicate_payment", LUIS, account="0021-2345-6789-0123-4599",
               note="buyer sent it by email").ok
    assert refund(taken_in, "auto-shop-91000002-duplicate_payment")["beneficiary_account"] == "00212345678901234599"
    (entry,) = taken_in.query("SELECT after_state FROM audit_log WHERE action = 'set_account'")
    assert json.loads(entry["after_state"])["beneficiary_account"] == "*****************599"


def test_list_and_show_mask_personal_data(taken_in, capsys):
    assert cli(taken_in, "list") == 0
    listing = capsys.readouterr().out
    assert cli(taken_in, "show", "shop-R-PAYER") == 0
    shown = capsys.readouterr().out
    for text in (listing, shown):
        assert "51111111" not in text and "70000007" not in text and "ana@tienda.pe" not in text
        assert "00212345678901234567" not in text
    assert "shop-R-M1-OK" in listing and "a***@tienda.pe" in listing and "******111" in listing
    assert "rejection:            BENEFICIARY_NOT_PAYER" in shown
    assert "beneficiary document: *****007" in shown
    assert "system:validation reject: BENEFICIARY_NOT_PAYER: beneficiary document *****007 is not the payer's *****111" in shown
    assert cli(taken_in, "list", "--status", "rejected", "--store", "shop") == 0
    rejected_lines = capsys.readouterr().out.strip().splitlines()[1:]
    assert len(rejected_lines) == 13 and all(" rejected (" in line for line in rejected_lines)


# -- the audit log -------------------------------------------------------------------------------

def test_every_decision_is_in_the_chained_audit_log_and_verify_accepts_it(taken_in, capsys):
    entries = taken_in.query("SELECT * FROM audit_log ORDER BY seq")
    refunds = taken_in.query("SELECT count(*) AS n FROM refunds")[0]["n"]
    assert len(entries) == 2 * refunds  # created, then decided
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0]["prev_hash"] == "0" * 64
    assert all(e["prev_hash"] == p["hash"] for p, e in zip(entries, entries[1:]))
    assert all(e["hash"] == entry_hash(e) for e in entries)
    assert cli(taken_in, "verify-audit") == 0
    assert capsys.readouterr().out.startswith(f"audit_log: {len(entries)} entries, chain intact and anchored, every refund as audited (head {entries[-1]['hash'][:16]}")


def _tamper(home, sql: str, params=()) -> None:
    with connect(home_lake(home.path)) as con:
        con.execute(sql, list(params))


def test_changing_an_entry_is_detected_at_that_entry(taken_in, capsys):
    _tamper(taken_in, "UPDATE audit_log SET why = 'approved by the boss' WHERE seq = 7")
    assert cli(taken_in, "verify-audit") == 1
    err = capsys.readouterr().err
    assert "audit_log: entry 7 is bad: entry 7 (" in err and "was changed after it was written" in err
    assert "the 6 entries before it are intact" in err


def test_rewriting_an_entry_with_a_fresh_hash_is_detected_at_the_next_entry(taken_in, capsys):
    (entry,) = taken_in.query("SELECT * FROM audit_log WHERE seq = 7")
    forged = {**entry, "actor": "mallory"}
    _tamper(taken_in, "UPDATE audit_log SET actor = 'mallory', hash = ? WHERE seq = 7", [entry_hash(forged)])
    assert cli(taken_in, "verify-audit") == 1
    assert "audit_log: entry 8 is bad: entry 8 does not chain to entry 7" in capsys.readouterr().err


def test_removing_an_entry_is_detected(taken_in, capsys):
    _tamper(taken_in, "DELETE FROM audit_log WHERE seq = 12")
    assert cli(taken_in, "verify-audit") == 1
    assert "audit_log: entry 12 is bad: entry 12 is missing (the next entry found is 13)" in capsys.readouterr().err


def test_the_chain_continues_across_connections_and_days(taken_in, capsys):
    with connect(home_lake(taken_in.path)) as con:
        assert approval.approve(con, load_settings(taken_in.path), "shop-R-M4-A", actor=LUIS, note=None, now=LATER).ok
    with connect(home_lake(taken_in.path)) as con:
        assert approval.reject(con, load_settings(taken_in.path), "shop-R-M4-C", actor=LUIS, note="duplicate of R-M4-A",
                               now=LATER + dt.timedelta(days=1)).ok
        intake(con, load_settings(taken_in.path), now=LATER + dt.timedelta(days=2))
    assert cli(taken_in, "verify-audit") == 0
    assert "chain intact" in capsys.readouterr().out
