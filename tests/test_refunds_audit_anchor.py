"""The audit chain is anchored outside the warehouse (`archive/audit-anchor.log`), so
`pagorecon refunds verify-audit` sees a cut-off tail, a chain re-forged with fresh hashes (when
`PAGORECON_AUDIT_KEY` is set) and a `refunds` row edited behind the audit log's back."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import pytest
from refunds_fixtures import NOW

from pagorecon_dagster.cli import main
from pagorecon_dagster.config import load_settings
from pagorecon_dagster.refunds import approval
from pagorecon_dagster.refunds.approval import Identity
from pagorecon_dagster.refunds.audit import entry_hash
from pagorecon_dagster.refunds.demo import run_demo_refunds
from pagorecon_dagster.refunds.intake import intake
from pagorecon_dagster.refunds.payout import pay_out
from pagorecon_dagster.warehouse.duckdb import connect, home_lake

KEY_ENV = "PAGORECON_AUDIT_KEY"


def verify(home) -> int:
    return main(["--home", str(home.path), "refunds", "verify-audit"])


def tamper(home, sql: str, params=()) -> None:
    with connect(home_lake(home.path)) as con:
        con.execute(sql, list(params))


def anchor_lines(home) -> list[str]:
    return (home.path / "archive" / "audit-anchor.log").read_text(encoding="utf-8").splitlines()


def reforge(home, seq: int, actor: str) -> None:
    """What someone with write access to the warehouse and the anchor file, but not the key, can
    do: rewrite one entry's actor, recompute every hash from there on, and rewrite the anchor to
    match (with lines they cannot key)."""
    entries = home.query("SELECT * FROM audit_log ORDER BY seq")
    prev = entries[seq - 2]["hash"] if seq > 1 else "0" * 64
    forged = []
    for entry in entries[seq - 1:]:
        entry = {**entry, "prev_hash": prev, "actor": actor if entry["seq"] == seq else entry["actor"]}
        entry["hash"] = prev = entry_hash(entry)
        forged.append(entry)
    with connect(home_lake(home.path)) as con:
        for entry in forged:
            con.execute("UPDATE audit_log SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                        [entry["actor"], entry["prev_hash"], entry["hash"], entry["seq"]])
    heads = [(e["seq"], e["hash"]) for e in entries[:seq - 1]] + [(e["seq"], e["hash"]) for e in forged]
    anchor = home.path / "archive" / "audit-anchor.log"
    anchor.parent.mkdir(parents=True, exist_ok=True)
    anchor.write_text("".join(f"{n} {h} -\n" for n, h in heads), encoding="utf-8")


@pytest.fixture
def keyed(refunds_reconciled, monkeypatch):
    """The scenario taken in while `PAGORECON_AUDIT_KEY` is set."""
    monkeypatch.setenv(KEY_ENV, "a long random secret only the operators hold")
    with connect(home_lake(refunds_reconciled.path)) as con:
        intake(con, load_settings(refunds_reconciled.path), now=NOW)
    return refunds_reconciled


def test_every_append_anchors_the_new_head_outside_the_warehouse(taken_in, capsys):
    entries = taken_in.query("SELECT seq, hash FROM audit_log ORDER BY seq")
    lines = anchor_lines(taken_in)
    assert [line.split()[:2] for line in lines] == [[str(e["seq"]), e["hash"]] for e in entries]
    assert verify(taken_in) == 0
    assert "chain intact" in capsys.readouterr().out


def test_a_cut_off_tail_is_detected(taken_in, capsys):
    head = taken_in.query("SELECT max(seq) AS n FROM audit_log")[0]["n"]
    tamper(taken_in, "DELETE FROM audit_log WHERE seq > ?", [head - 3])
    assert verify(taken_in) == 1
    err = capsys.readouterr().err
    assert f"entries {head - 2}..{head} were removed from audit_log" in err
    assert "archive/audit-anchor.log" in err


def test_a_reforged_chain_is_detected_when_the_key_is_set(keyed, capsys, monkeypatch):
    reforge(keyed, 7, "mallory")
    assert verify(keyed) == 1
    err = capsys.readouterr().err
    assert "anchor line 1 does not carry a valid key mark" in err and "PAGORECON_AUDIT_KEY" in err


def test_a_reforged_chain_is_detected_even_without_the_key_when_the_anchor_is_left_alone(taken_in, capsys):
    anchor = (taken_in.path / "archive" / "audit-anchor.log").read_bytes()
    reforge(taken_in, 7, "mallory")
    (taken_in.path / "archive" / "audit-anchor.log").write_bytes(anchor)
    assert verify(taken_in) == 1
    assert "entry 7 does not match the head anchored in" in capsys.readouterr().err


def test_the_anchor_lines_are_keyed_and_verify_fails_with_another_key(keyed, capsys, monkeypatch):
    assert all(len(line.split()) == 3 and len(line.split()[2]) == 64 for line in anchor_lines(keyed))
    assert verify(keyed) == 0
    capsys.readouterr()
    monkeypatch.setenv(KEY_ENV, "another secret")
    assert verify(keyed) == 1
    assert "anchor line 1 does not carry a valid key mark" in capsys.readouterr().err


@pytest.mark.parametrize(("column", "value"), [
    ("amount_cents", 1),
    ("status", "approved"),
    ("beneficiary_document", "99999111"),            # same last 3 digits: the masked state agrees
    ("beneficiary_account", "99999999999999999567"),  # same last 3 digits: the masked state agrees
    ("approved_by", "luis"),
])
def test_a_refund_row_edited_behind_the_audit_log_is_detected(taken_in, capsys, column, value):
    tamper(taken_in, f"UPDATE refunds SET {column} = ? WHERE refund_id = 'shop-R-M1-OK'", [value])
    assert verify(taken_in) == 1
    err = capsys.readouterr().err
    assert f"refund shop-R-M1-OK differs from its last audited state (entry " in err
    assert column in err
    if column.startswith("beneficiary_"):
        assert str(value) not in err and str(value)[:5] not in err  # personal data is never echoed


def test_a_refund_row_added_or_deleted_behind_the_audit_log_is_detected(taken_in, capsys):
    tamper(taken_in, "DELETE FROM refunds WHERE refund_id = 'shop-R-M3-A'")
    assert verify(taken_in) == 1
    assert "refund shop-R-M3-A is in the audit log (entry " in capsys.readouterr().err


def test_approvals_payouts_and_bank_confirmations_keep_verify_clean(taken_in, capsys):
    """Every writer of `refunds` goes through the audit log: a whole payout leaves nothing to flag."""
    settings = load_settings(taken_in.path)
    later = NOW + dt.timedelta(hours=1)
    with connect(home_lake(taken_in.path)) as con:
        assert approval.approve(con, settings, "shop-R-M1-OK", actor=Identity("luis"), note=None, now=later).ok
        assert approval.set_account(con, settings, "auto-shop-91000003-paid_cancelled_order", account="00298765432109876543",
                                    actor=Identity("maria"), note=None, now=later).ok
        assert approval.approve(con, settings, "auto-shop-91000003-paid_cancelled_order", actor=Identity("luis"), note=None, now=later).ok
    assert pay_out(settings, executor="payout_file", clock=lambda: later).batched == 2
    taken_in.drop("refund_confirmations/bank.csv", "refund_id,status,amount,currency,bank_reference,executed_at,detail\n"
                  "shop-R-M1-OK,paid,100.00,PEN,BCP-1,2026-07-21 09:00:00,\n"
                  "auto-shop-91000003-paid_cancelled_order,failed,80.00,PEN,,,cuenta cerrada\n")
    pay_out(settings, executor="payout_file", clock=lambda: later + dt.timedelta(days=1))
    statuses = {r["refund_id"]: r["status"] for r in taken_in.query("SELECT refund_id, status FROM refunds")}
    assert (statuses["shop-R-M1-OK"], statuses["auto-shop-91000003-paid_cancelled_order"]) == ("paid", "failed")
    assert verify(taken_in) == 0, capsys.readouterr().err
    heads = taken_in.query("SELECT seq, hash FROM audit_log ORDER BY seq")
    assert [line.split()[:2] for line in anchor_lines(taken_in)] == [[str(h["seq"]), h["hash"]] for h in heads]


def test_payouts_through_the_provider_api_keep_verify_clean(refunds_reconciled, capsys, monkeypatch):
    for name in ("PAGORECON_REFUND_API_URL", "PAGORECON_REFUND_API_KEY", "PAGORECON_REFUND_EXECUTOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(KEY_ENV, "a long random secret only the operators hold")
    settings = load_settings(refunds_reconciled.path)
    with connect(settings.lake) as con:
        intake(con, settings, now=NOW)
    lines = run_demo_refunds(settings, dg.DagsterInstance.ephemeral())
    assert "FAILED" not in lines[0] and any(line.startswith("  paid ") for line in lines)
    assert verify(refunds_reconciled) == 0, capsys.readouterr().err
