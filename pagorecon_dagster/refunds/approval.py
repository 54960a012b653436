"""Who may let a refund go: the store's auto-refund limit for what reconciliation proposes, a
person for everything else. The approver is never the requester; every decision is audited."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.lima import LIMA_TZ
from pagorecon_dagster.core.money import format_cents
from pagorecon_dagster.refunds import state
from pagorecon_dagster.refunds.state import APPROVED, AWAITING_APPROVAL, REJECTED, REQUESTED
from pagorecon_dagster.refunds.validation import Failure, validate

VALIDATOR = "system:validation"
AUTO_APPROVER = "system:auto-approval"
REJECTED_BY_APPROVER = "REJECTED_BY_APPROVER"
# An interbank account code (CCI) has 20 digits.
CCI_RE = re.compile(r"^\d{20}$")


@dataclass(frozen=True)
class Decision:
    ok: bool
    message: str
    refund: dict[str, Any] | None = None


def lima_today(now: dt.datetime) -> dt.date:
    return now.astimezone(ZoneInfo(LIMA_TZ)).date()


def decide(con: duckdb.DuckDBPyConnection, settings: Settings, refund: dict[str, Any], *, now: dt.datetime) -> dict[str, Any]:
    """A new refund (status `requested`): rejected with its reason codes, auto-approved, or left
    for a person. Call inside `state.transaction`."""
    failures = validate(con, refund)
    if failures:
        return _reject_failures(con, refund, failures, actor=VALIDATOR, expect=(REQUESTED,), now=now, prefix="")
    automatic, why = auto_approval(con, settings, refund, now=now)
    if automatic:
        return state.transition(con, refund["refund_id"], expect=(REQUESTED,), to=APPROVED, actor=AUTO_APPROVER,
                                action="approve", why=why, now=now, changes={"approved_by": AUTO_APPROVER, "approved_at": now})
    return state.transition(con, refund["refund_id"], expect=(REQUESTED,), to=AWAITING_APPROVAL, actor=VALIDATOR,
                            action="await_approval", why=why, now=now)


def _reject_failures(con, refund, failures: list[Failure], *, actor: str, expect, now, prefix: str) -> dict[str, Any]:
    codes = ",".join(f.code for f in failures)
    detail = "; ".join(f"{f.code}: {f.detail}" for f in failures)
    return state.transition(con, refund["refund_id"], expect=expect, to=REJECTED, actor=actor, action="reject",
                            why=prefix + detail, now=now, changes={"rejection_reason": codes, "rejection_detail": detail})


def auto_approval(con: duckdb.DuckDBPyConnection, settings: Settings, refund: dict[str, Any], *, now: dt.datetime) -> tuple[bool, str]:
    """(approve automatically?, why). Only refunds reconciliation proposed, up to the store's
    `auto_refund_limit` (PEN). A USD refund is compared at the SBS sell rate last published on or
    before today, rounded up; with no rate known it waits for a person."""
    amount, currency = refund["amount_cents"], refund["currency"]
    if refund["source"] != "reconciliation":
        return False, "requested by a person: another person approves it"
    try:
        limit = settings.store(refund["store_id"]).auto_refund_limit_cents
    except KeyError:
        return False, f"store {refund['store_id']} is not in pagorecon.yaml: a person approves it"
    shown = format_cents(amount, currency)
    if currency == "PEN":
        pen, how = amount, shown
    else:
        today = lima_today(now)
        rate = con.execute(
            "SELECT date, sell FROM fx_rates WHERE currency = ? AND date <= ? ORDER BY date DESC LIMIT 1", [currency, today]
        ).fetchone()
        if rate is None:
            return False, f"{shown}: no SBS rate for {currency} on or before {today}, so it cannot be held against the PEN limit; a person approves it"
        pen = int((Decimal(amount) * Decimal(str(rate[1]))).to_integral_value(rounding=ROUND_CEILING))
        how = f"{shown} x SBS sell {rate[1].normalize()} of {rate[0]} = {format_cents(pen, 'PEN')}"
    limit_text = format_cents(limit, "PEN")
    if pen <= limit:
        return True, f"{how} is within the store's auto-refund limit {limit_text}"
    return False, f"{how} is above the store's auto-refund limit {limit_text}: a person approves it"


def _person(by: str) -> str | None:
    """The approver's name, or None when it is empty or a reserved system name."""
    name = (by or "").strip()
    return name if name and not name.lower().startswith(state.SYSTEM_PREFIX) else None


def _same_person(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def approve(con: duckdb.DuckDBPyConnection, refund_id: str, *, by: str, note: str | None, now: dt.datetime) -> Decision:
    """A person approves a refund awaiting approval; the rules are checked again first (other
    refunds or a reversal may have changed what is refundable since it was filed)."""
    person = _person(by)
    if person is None:
        return Decision(False, f"--by must name a person (not empty, not starting with {state.SYSTEM_PREFIX!r})")
    with state.transaction(con):
        refund = state.load(con, refund_id)
        if refund is None:
            return Decision(False, f"no refund {refund_id!r}")
        if refund["status"] != AWAITING_APPROVAL:
            return Decision(False, f"refund {refund_id} is {refund['status']}; only a refund awaiting approval can be approved", refund)
        if _same_person(person, refund["requested_by"]):
            return Decision(False, f"{person} requested refund {refund_id}: another person must approve it", refund)
        failures = validate(con, refund)
        if failures:
            rejected = _reject_failures(con, refund, failures, actor=person, expect=(AWAITING_APPROVAL,), now=now,
                                        prefix="re-checked at approval: ")
            return Decision(False, f"refund {refund_id} no longer passes its checks and was rejected: {rejected['rejection_detail']}", rejected)
        approved = state.transition(con, refund_id, expect=(AWAITING_APPROVAL,), to=APPROVED, actor=person, action="approve",
                                    why=note or "approved", now=now, changes={"approved_by": person, "approved_at": now})
        return Decision(True, f"refund {refund_id} approved by {person}", approved)


def reject(con: duckdb.DuckDBPyConnection, refund_id: str, *, by: str, note: str, now: dt.datetime) -> Decision:
    """A person rejects a refund awaiting approval, or withdraws an approved one not yet sent."""
    person = _person(by)
    if person is None:
        return Decision(False, f"--by must name a person (not empty, not starting with {state.SYSTEM_PREFIX!r})")
    if not (note or "").strip():
        return Decision(False, "--note is required: say why the refund is rejected")
    with state.transaction(con):
        refund = state.load(con, refund_id)
        if refund is None:
            return Decision(False, f"no refund {refund_id!r}")
        if refund["status"] not in (AWAITING_APPROVAL, APPROVED):
            return Decision(False, f"refund {refund_id} is {refund['status']}; only a refund awaiting approval or approved and not yet submitted can be rejected", refund)
        rejected = state.transition(con, refund_id, expect=(AWAITING_APPROVAL, APPROVED), to=REJECTED, actor=person, action="reject",
                                    why=note.strip(), now=now,
                                    changes={"rejection_reason": REJECTED_BY_APPROVER, "rejection_detail": note.strip()})
        return Decision(True, f"refund {refund_id} rejected by {person}", rejected)


def set_account(con: duckdb.DuckDBPyConnection, refund_id: str, *, account: str, by: str, note: str | None, now: dt.datetime) -> Decision:
    """Record the payer's bank account (CCI) a bank-transfer payout needs, before it is sent."""
    person = _person(by)
    if person is None:
        return Decision(False, f"--by must name a person (not empty, not starting with {state.SYSTEM_PREFIX!r})")
    cci = re.sub(r"[\s\-]", "", account or "")
    if not CCI_RE.match(cci):
        return Decision(False, "--account must be the payer's 20-digit interbank account code (CCI)")
    with state.transaction(con):
        refund = state.load(con, refund_id)
        if refund is None:
            return Decision(False, f"no refund {refund_id!r}")
        if refund["status"] not in (AWAITING_APPROVAL, APPROVED):
            return Decision(False, f"refund {refund_id} is {refund['status']}; the account can change only before it is submitted", refund)
        changed = state.transition(con, refund_id, expect=(refund["status"],), to=refund["status"], actor=person,
                                   action="set_account", why=note or "beneficiary account recorded", now=now,
                                   changes={"beneficiary_account": cci})
        return Decision(True, f"refund {refund_id}: beneficiary account recorded by {person}", changed)
