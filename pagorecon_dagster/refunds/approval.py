"""Who may let a refund go: the store's auto-refund limit for what reconciliation proposes, a
person for everything else. A person is the operating-system account running the command
(`Identity.from_os`), on the `approvers` roster of pagorecon.yaml; the approver is never the
requester nor whoever set the payout account, and approves only up to their own limit. Every
decision is audited."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from pagorecon_dagster.config import Approver, Settings
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
class Identity:
    """Who is acting: an operating-system account name. The CLI builds it from the process's
    effective uid, which the person cannot type; tests and other callers pass one explicitly."""

    user: str

    @classmethod
    def from_os(cls) -> Identity:
        return cls(pwd.getpwuid(os.geteuid()).pw_name)


def owner_of(path) -> str | None:
    """The account owning a file (who dropped it), or None when it is gone or has no name."""
    try:
        return pwd.getpwuid(os.stat(path).st_uid).pw_name
    except (OSError, KeyError):
        return None


@dataclass(frozen=True)
class Decision:
    ok: bool
    message: str
    refund: dict[str, Any] | None = None


def lima_today(now: dt.datetime) -> dt.date:
    return now.astimezone(ZoneInfo(LIMA_TZ)).date()


def decide(con: duckdb.DuckDBPyConnection, settings: Settings, refund: dict[str, Any], *, now: dt.datetime) -> dict[str, Any]:
    """A new refund (status `requested`): rejected with its reason codes, auto-approved, or left
    for a person. Call inside `state.transaction` (or `state.atomically`)."""
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


def pen_value(con: duckdb.DuckDBPyConnection, amount: int, currency: str, *, now: dt.datetime) -> tuple[int | None, str]:
    """(the amount in PEN céntimos, how it was computed). A USD amount is converted at the SBS sell
    rate last published on or before today (Lima), rounded up; None when no rate is known."""
    shown = format_cents(amount, currency)
    if currency == "PEN":
        return amount, shown
    today = lima_today(now)
    rate = con.execute(
        "SELECT date, sell FROM fx_rates WHERE currency = ? AND date <= ? ORDER BY date DESC LIMIT 1", [currency, today]
    ).fetchone()
    if rate is None:
        return None, f"{shown}: no SBS rate for {currency} on or before {today}"
    pen = int((Decimal(amount) * Decimal(str(rate[1]))).to_integral_value(rounding=ROUND_CEILING))
    return pen, f"{shown} x SBS sell {rate[1].normalize()} of {rate[0]} = {format_cents(pen, 'PEN')}"


def auto_approval(con: duckdb.DuckDBPyConnection, settings: Settings, refund: dict[str, Any], *, now: dt.datetime) -> tuple[bool, str]:
    """(approve automatically?, why). Only refunds reconciliation proposed, up to the store's
    `auto_refund_limit` (PEN, see `pen_value`); with no rate known it waits for a person."""
    if refund["source"] != "reconciliation":
        return False, "requested by a person: another person approves it"
    try:
        limit = settings.store(refund["store_id"]).auto_refund_limit_cents
    except KeyError:
        return False, f"store {refund['store_id']} is not in pagorecon.yaml: a person approves it"
    pen, how = pen_value(con, refund["amount_cents"], refund["currency"], now=now)
    if pen is None:
        return False, f"{how}, so it cannot be held against the PEN limit; a person approves it"
    limit_text = format_cents(limit, "PEN")
    if pen <= limit:
        return True, f"{how} is within the store's auto-refund limit {limit_text}"
    return False, f"{how} is above the store's auto-refund limit {limit_text}: a person approves it"


def _on_roster(settings: Settings, actor: Identity) -> Approver | Decision:
    approver = settings.approver(actor.user)
    if approver is None:
        return Decision(False, f"the operating-system account {actor.user!r} running this command is not on the `approvers` "
                               "roster in pagorecon.yaml: only a listed approver decides refunds (run it as your own account, "
                               "or ask whoever administers pagorecon.yaml to list you)")
    return approver


def _same_text(a: str | None, b: str | None) -> bool:
    return bool(a and b) and a.strip().casefold() == b.strip().casefold()


def requested_by_person(refund: dict[str, Any], approver: Approver) -> bool:
    """Is this approver the refund's requester? The account that dropped the request file, or the
    request's `requested_by` as data: the approver's account name, display name, or an email whose
    local part is the account name."""
    if refund.get("requested_by_user") == approver.user:
        return True
    filed = (refund["requested_by"] or "").strip()
    local = filed.split("@", 1)[0] if "@" in filed else None
    return any(_same_text(filed, name) for name in (approver.user, approver.name)) or _same_text(local, approver.user)


def approve(con: duckdb.DuckDBPyConnection, settings: Settings, refund_id: str, *, actor: Identity, note: str | None,
            now: dt.datetime) -> Decision:
    """A person on the roster approves a refund awaiting approval that has a payout account; the
    rules are checked again first (other refunds or a reversal may have changed what is refundable
    since it was filed)."""
    approver = _on_roster(settings, actor)
    if isinstance(approver, Decision):
        return approver

    def decide_it(con: duckdb.DuckDBPyConnection) -> Decision:
        refund = state.load(con, refund_id)
        if refund is None:
            return Decision(False, f"no refund {refund_id!r}")
        if refund["status"] != AWAITING_APPROVAL:
            return Decision(False, f"refund {refund_id} is {refund['status']}; only a refund awaiting approval can be approved", refund)
        if requested_by_person(refund, approver):
            return Decision(False, f"{approver.user} requested refund {refund_id}: another approver must approve it", refund)
        if refund.get("account_set_by") == approver.user:
            return Decision(False, f"{approver.user} set the payout account of refund {refund_id}: another approver must approve it", refund)
        if not refund["beneficiary_account"]:
            return Decision(False, f"refund {refund_id} has no payout account: record the payer's CCI first with "
                                   f"`pagorecon refunds set-account {refund_id} --account CCI` (then another approver approves it)", refund)
        if approver.approval_limit_cents is not None:
            pen, how = pen_value(con, refund["amount_cents"], refund["currency"], now=now)
            limit = format_cents(approver.approval_limit_cents, "PEN")
            if pen is None:
                return Decision(False, f"{how}, so it cannot be held against {approver.user}'s approval limit {limit}: "
                                       "an approver without a limit approves it, or load the SBS rate first", refund)
            if pen > approver.approval_limit_cents:
                return Decision(False, f"{how} is above {approver.user}'s approval limit {limit}: an approver with a higher limit approves it", refund)
        failures = validate(con, refund)
        if failures:
            rejected = _reject_failures(con, refund, failures, actor=approver.user, expect=(AWAITING_APPROVAL,), now=now,
                                        prefix="re-checked at approval: ")
            return Decision(False, f"refund {refund_id} no longer passes its checks and was rejected: {rejected['rejection_detail']}", rejected)
        approved = state.transition(con, refund_id, expect=(AWAITING_APPROVAL,), to=APPROVED, actor=approver.user, action="approve",
                                    why=note or "approved", now=now, changes={"approved_by": approver.user, "approved_at": now})
        return Decision(True, f"refund {refund_id} approved by {approver.user}", approved)

    return state.atomically(con, decide_it)


def reject(con: duckdb.DuckDBPyConnection, settings: Settings, refund_id: str, *, actor: Identity, note: str,
           now: dt.datetime) -> Decision:
    """A person on the roster rejects a refund awaiting approval, or withdraws an approved one not yet sent."""
    approver = _on_roster(settings, actor)
    if isinstance(approver, Decision):
        return approver
    if not (note or "").strip():
        return Decision(False, "--note is required: say why the refund is rejected")

    def decide_it(con: duckdb.DuckDBPyConnection) -> Decision:
        refund = state.load(con, refund_id)
        if refund is None:
            return Decision(False, f"no refund {refund_id!r}")
        if refund["status"] not in (AWAITING_APPROVAL, APPROVED):
            return Decision(False, f"refund {refund_id} is {refund['status']}; only a refund awaiting approval or approved and not yet submitted can be rejected", refund)
        rejected = state.transition(con, refund_id, expect=(AWAITING_APPROVAL, APPROVED), to=REJECTED, actor=approver.user, action="reject",
                                    why=note.strip(), now=now,
                                    changes={"rejection_reason": REJECTED_BY_APPROVER, "rejection_detail": note.strip()})
        return Decision(True, f"refund {refund_id} rejected by {approver.user}", rejected)

    return state.atomically(con, decide_it)


def set_account(con: duckdb.DuckDBPyConnection, settings: Settings, refund_id: str, *, account: str, actor: Identity,
                note: str | None, now: dt.datetime) -> Decision:
    """A person on the roster records the payer's bank account (CCI) a payout needs, before it is
    sent. Changing where money goes undoes an approval: the refund waits for an approver who is
    neither its requester nor this person."""
    approver = _on_roster(settings, actor)
    if isinstance(approver, Decision):
        return approver
    cci = re.sub(r"[\s\-]", "", account or "")
    if not CCI_RE.match(cci):
        return Decision(False, "--account must be the payer's 20-digit interbank account code (CCI)")

    def decide_it(con: duckdb.DuckDBPyConnection) -> Decision:
        refund = state.load(con, refund_id)
        if refund is None:
            return Decision(False, f"no refund {refund_id!r}")
        if refund["status"] not in (AWAITING_APPROVAL, APPROVED):
            return Decision(False, f"refund {refund_id} is {refund['status']}; the account can change only before it is submitted", refund)
        if refund["beneficiary_account"] == cci:
            return Decision(True, f"refund {refund_id}: that account is already recorded; nothing changed", refund)
        changes: dict[str, Any] = {"beneficiary_account": cci, "account_set_by": approver.user}
        if refund["status"] == APPROVED:
            changes |= {"approved_by": None, "approved_at": None}
        changed = state.transition(con, refund_id, expect=(refund["status"],), to=AWAITING_APPROVAL, actor=approver.user,
                                   action="set_account", why=note or "beneficiary account recorded", now=now, changes=changes)
        again = " (its approval is withdrawn)" if refund["status"] == APPROVED else ""
        return Decision(True, f"refund {refund_id}: beneficiary account recorded by {approver.user}{again}; "
                              "it now waits for an approver who neither requested it nor set the account", changed)

    return state.atomically(con, decide_it)