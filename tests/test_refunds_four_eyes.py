"""Four eyes on every refund a person lets go: the approver is the operating-system account
running the command, on the `approvers` roster, neither the requester nor whoever set the payout
account, within their own limit; changing the account after approval undoes the approval."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from refunds_fixtures import APPROVERS, NOW

from pagorecon_dagster.config import ConfigError, load_settings
from pagorecon_dagster.refunds import approval
from pagorecon_dagster.refunds.approval import Identity
from pagorecon_dagster.refunds.intake import intake
from pagorecon_dagster.warehouse.duckdb import connect, home_lake

LATER = NOW + dt.timedelta(hours=2)
ANA, LUIS, MARIA, CARLA = (Identity(u) for u in ("ana", "luis", "maria", "carla"))
OTHER_CCI = "00299988877766655544"
PAGORECON = Path(sys.executable).with_name("pagorecon")


def act(home, what, refund_id, actor, **kwargs) -> approval.Decision:
    with connect(home_lake(home.path)) as con:
        return getattr(approval, what)(con, load_settings(home.path), refund_id, actor=actor, now=LATER,
                                       **{"note": None, **kwargs})


def refund(home, refund_id: str) -> dict:
    (row,) = home.query("SELECT * FROM refunds WHERE refund_id = ?", [refund_id])
    return row


# -- finding: the account changed after approval ----------------------------------------------------

def test_changing_the_account_of_an_approved_refund_sends_it_back_for_a_new_approval(taken_in):
    rid = "shop-R-M1-OK"   # requested by ana@tienda.pe, with an account
    assert act(taken_in, "approve", rid, LUIS).ok
    assert refund(taken_in, rid)["status"] == "approved"

    changed = act(taken_in, "set_account", rid, MARIA, account=OTHER_CCI)
    assert changed.ok and "its approval is withdrawn" in changed.message
    row = refund(taken_in, rid)
    assert (row["status"], row["approved_by"], row["approved_at"], row["beneficiary_account"], row["account_set_by"]) == (
        "awaiting_approval", None, None, OTHER_CCI, "maria")
    (entry,) = taken_in.query("SELECT actor, before_state, after_state FROM audit_log WHERE entity_id = ? AND action = 'set_account'", [rid])
    assert entry["actor"] == "maria"
    assert (json.loads(entry["before_state"])["status"], json.loads(entry["after_state"])["status"]) == ("approved", "awaiting_approval")

    # neither the requester nor whoever set the account approves it now; a third person does
    refused = act(taken_in, "approve", rid, ANA)
    assert not refused.ok and "ana requested refund shop-R-M1-OK: another approver must approve it" in refused.message
    refused = act(taken_in, "approve", rid, MARIA)
    assert not refused.ok and "maria set the payout account of refund shop-R-M1-OK" in refused.message
    assert refund(taken_in, rid)["status"] == "awaiting_approval"
    assert act(taken_in, "approve", rid, LUIS).ok
    assert (refund(taken_in, rid)["status"], refund(taken_in, rid)["approved_by"]) == ("approved", "luis")


def test_whoever_sets_the_account_of_an_auto_approved_refund_cannot_approve_it(taken_in):
    rid = "auto-shop-91000002-duplicate_payment"   # approved by system:auto-approval, no account
    assert act(taken_in, "set_account", rid, LUIS, account=OTHER_CCI).ok
    assert refund(taken_in, rid)["status"] == "awaiting_approval"
    assert not act(taken_in, "approve", rid, LUIS).ok
    assert act(taken_in, "approve", rid, ANA).ok


def test_a_refund_without_a_payout_account_cannot_be_approved(taken_in):
    rid = "auto-shop-91000010-paid_cancelled_order"   # PEN 150.01, above the store's limit, no account
    refused = act(taken_in, "approve", rid, LUIS)
    assert not refused.ok and "has no payout account: record the payer's CCI first with `pagorecon refunds set-account" in refused.message
    assert refund(taken_in, rid)["status"] == "awaiting_approval"
    assert act(taken_in, "set_account", rid, MARIA, account=OTHER_CCI).ok
    assert act(taken_in, "approve", rid, LUIS).ok


# -- finding: four eyes on free text ---------------------------------------------------------------

def test_only_an_account_on_the_roster_decides(taken_in):
    for what, extra in (("approve", {}), ("reject", {"note": "no"}), ("set_account", {"account": OTHER_CCI})):
        refused = act(taken_in, what, "shop-R-M3-A", Identity("root"), **extra)
        assert not refused.ok and "'root' running this command is not on the `approvers` roster" in refused.message
    assert refund(taken_in, "shop-R-M3-A")["status"] == "awaiting_approval"


def test_the_requester_is_recognised_by_account_display_name_or_email(taken_in, tmp_path):
    # requests were filed as ana@tienda.pe: ana's account is their requester
    assert "ana requested refund" in act(taken_in, "approve", "shop-R-M3-A", ANA).message
    settings = yaml.safe_load((taken_in.path / "pagorecon.yaml").read_text(encoding="utf-8"))
    settings["approvers"] = [{"user": "atorres", "name": "ana@tienda.pe"}, {"user": "luis"}]
    (taken_in.path / "pagorecon.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    assert "atorres requested refund" in act(taken_in, "approve", "shop-R-M3-A", Identity("atorres")).message


def test_an_approver_approves_only_up_to_their_own_limit_in_pen(taken_in):
    refused = act(taken_in, "approve", "shop-R-M1-OK", CARLA)   # PEN 100.00, carla's limit PEN 50.00
    assert not refused.ok and refused.message == "PEN 100.00 is above carla's approval limit PEN 50.00: an approver with a higher limit approves it"
    usd = "auto-shop-91000007-paid_cancelled_order"   # USD 50.00, awaiting approval
    assert act(taken_in, "set_account", usd, MARIA, account=OTHER_CCI).ok
    refused = act(taken_in, "approve", usd, CARLA)
    assert refused.message == ("USD 50.00 x SBS sell 3.745 of 2026-07-13 = PEN 187.25 is above carla's approval limit PEN 50.00: "
                               "an approver with a higher limit approves it")
    assert act(taken_in, "approve", "shop-R-M4-A", CARLA).ok   # PEN 10.00


def test_the_account_that_dropped_a_request_file_is_its_requester(refunds_reconciled):
    home = refunds_reconciled
    settings = yaml.safe_load((home.path / "pagorecon.yaml").read_text(encoding="utf-8"))
    settings["approvers"] = [*APPROVERS, {"user": "nobody", "name": "Operador"}]
    (home.path / "pagorecon.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    os.chown(home.path / "landing" / "refunds" / "shop" / "requests.csv", 65534, 65534)   # dropped by `nobody`
    with connect(home_lake(home.path)) as con:
        intake(con, load_settings(home.path), now=NOW)
    assert refund(home, "shop-R-M3-A")["requested_by_user"] == "nobody"
    refused = act(home, "approve", "shop-R-M3-A", Identity("nobody"))
    assert not refused.ok and "nobody requested refund shop-R-M3-A" in refused.message
    assert act(home, "approve", "shop-R-M3-A", LUIS).ok


@pytest.mark.parametrize(("approvers", "problem"), [
    ("maria", "`approvers` must be a list"),
    ([{"user": "maria quispe"}], "`approvers[0].user` must be an operating-system account name"),
    ([{"user": "maria"}, {"user": "maria"}], "`approvers[1].user` 'maria' is listed twice"),
    ([{"user": "maria", "approval_limit": "2,000.00"}], "`approvers[0].approval_limit`"),
    ([{"user": "maria", "limit": "20.00"}], "`approvers[0]` has unknown key(s) limit"),
])
def test_a_bad_roster_is_refused_at_start_naming_the_key(home, approvers, problem):
    home.config(approvers=approvers)
    with pytest.raises(ConfigError) as raised:
        load_settings(home.path)
    assert problem in str(raised.value)


def test_the_roster_reads_names_and_limits(home):
    home.config(approvers=[{"user": "maria", "name": "María Quispe", "approval_limit": "2000.00"}, {"user": "luis"}])
    settings = load_settings(home.path)
    assert settings.approver("maria").approval_limit_cents == 200000
    assert (settings.approver("luis").name, settings.approver("luis").approval_limit_cents) == ("luis", None)
    assert settings.approver("root") is None


# -- end to end: the command records the OS account, never a typed name ---------------------------------

def pagorecon(home, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(PAGORECON), "--home", str(home.path), "refunds", *args],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())


def test_the_command_decides_as_the_os_account_running_it_and_refuses_a_typed_name(taken_in):
    me = Identity.from_os().user
    assert me not in {a["user"] for a in APPROVERS}
    typed = pagorecon(taken_in, "approve", "shop-R-M1-OK", "--by", "luis")
    assert typed.returncode == 2 and "--by is not accepted: who decides is the operating-system account running this command" in typed.stderr
    refused = pagorecon(taken_in, "approve", "shop-R-M1-OK")
    assert refused.returncode == 1 and f"the operating-system account '{me}' running this command is not on the `approvers` roster" in refused.stderr
    assert refund(taken_in, "shop-R-M1-OK")["status"] == "awaiting_approval"

    settings = yaml.safe_load((taken_in.path / "pagorecon.yaml").read_text(encoding="utf-8"))
    settings["approvers"].append({"user": me})
    (taken_in.path / "pagorecon.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    done = pagorecon(taken_in, "approve", "shop-R-M1-OK", "--note", "voucher checked")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"refund shop-R-M1-OK approved by {me}\n"
    assert (refund(taken_in, "shop-R-M1-OK")["approved_by"]) == me
    (entry,) = taken_in.query("SELECT actor FROM audit_log WHERE entity_id = 'shop-R-M1-OK' AND action = 'approve'")
    assert entry["actor"] == me
    assert pagorecon(taken_in, "verify-audit").returncode == 0
