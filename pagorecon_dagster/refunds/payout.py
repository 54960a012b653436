"""Paying approved refunds out, exactly once, through the configured executor.

The rules that make it exactly once:
- a refund is claimed (approved -> submitted, attempts + 1) by a conditional UPDATE in its own
  transaction *before* the provider is called, so two workers never both claim it;
- no warehouse connection is held while the provider is called: claim, call, record are three
  steps, each a short transaction that runs again when its commit conflicts with another
  worker's (`state.atomically`): a claim that lost the race re-reads and claims the next refund;
- a submitted refund with no recorded outcome is resolved by asking the provider for its status
  (GET by idempotency key) before anything is sent again, and a re-send is itself a conditional
  claim on the attempt count;
- the idempotency key is the refund id, so even a second send is paid once by the provider."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pagorecon_dagster.config import ConfigError, Settings
from pagorecon_dagster.refunds import payout_file, state
from pagorecon_dagster.refunds.provider_api import (
    FAILED,
    PAID,
    PROCESSING,
    UNKNOWN,
    ApiSettings,
    Outcome,
    ProviderError,
    ProviderUnreachable,
    RefundApiClient,
    api_settings,
)
from pagorecon_dagster.refunds.state import APPROVED, PAYABLE_SQL, SUBMITTED
from pagorecon_dagster.warehouse.duckdb import table_type

EXECUTOR_ENV = "PAGORECON_REFUND_EXECUTOR"
API, PAYOUT_FILE = "api", payout_file.EXECUTOR
EXECUTORS = (API, PAYOUT_FILE)
API_ACTOR = "system:payout-api"
# A submitted refund younger than this may still be in another worker's hands (its call to the
# provider can take timeout x attempts + backoff); older ones with no outcome are resolved.
DEFAULT_IN_FLIGHT_GRACE_SECONDS = 300.0


class PayoutError(Exception):
    """The provider answered in a way a person must look at; the refund stays submitted."""


def executor_name(settings: Settings, override: str | None = None, provider: Any = None) -> str:
    """Run config, else $PAGORECON_REFUND_EXECUTOR, else `refunds.executor` in pagorecon.yaml,
    else `api` when $PAGORECON_REFUND_API_URL is set, else `payout_file`. The variables come
    through `provider`, the `RefundProvider` resource (None: neither is set)."""
    env_executor, env_url = (provider.executor_value(), provider.url_value()) if provider is not None else ("", "")
    for where, value in (("the run config's executor", override), (f"${EXECUTOR_ENV}", env_executor),
                         ("pagorecon.yaml: `refunds.executor`", settings.refunds.executor)):
        if value and str(value).strip():
            if str(value).strip() not in EXECUTORS:
                raise ConfigError(f"{where} must be one of {', '.join(EXECUTORS)}, got {value!r}")
            return str(value).strip()
    return API if env_url.strip() else PAYOUT_FILE


@dataclass
class PayoutSummary:
    executor: str
    paid: int = 0
    failed: int = 0
    processing: int = 0       # accepted by the provider, not final yet
    unknown: int = 0          # no answer: left submitted, resolved by status on a later run
    batched: int = 0          # payout_file: put in a bank-transfer batch
    batches: list[str] = field(default_factory=list)
    confirmations: dict[str, int] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)   # approved refunds that cannot be paid now, and why

    def count(self, outcome: Outcome) -> None:
        attribute = {PAID: "paid", FAILED: "failed", PROCESSING: "processing", UNKNOWN: "unknown"}[outcome.status]
        setattr(self, attribute, getattr(self, attribute) + 1)


def pay_out(
    settings: Settings,
    *,
    executor: str | None = None,
    api: ApiSettings | None = None,
    in_flight_grace_seconds: float = DEFAULT_IN_FLIGHT_GRACE_SECONDS,
    clock: Callable[[], dt.datetime] = state.now_utc,
) -> PayoutSummary:
    """One payout pass: finish what earlier passes left open, pay what is approved, match bank
    confirmations. Opens the warehouse only for short transactions, never across a provider call."""
    name = executor_name(settings, executor)
    summary = PayoutSummary(name)
    cutoff = clock() - dt.timedelta(seconds=in_flight_grace_seconds)

    def open_work(con):
        if table_type(con, "payments") is None:
            return None  # reconciliation has not run yet: nothing can have been approved
        return (payout_file.unwritten_batches(con), payout_file.unread_confirmation_files(settings, con),
                # accepted by the provider but not final: ask again, never send again
                _submitted(con, "provider_reference IS NOT NULL"),
                # sent with no answer recorded (a timeout, or the worker died): ask first, then maybe re-send
                _submitted(con, "provider_reference IS NULL AND submitted_at <= ?", [cutoff]))

    found = state.atomically(settings.lake, open_work)
    if found is None:
        return summary
    unwritten, confirmation_files, accepted, unanswered = found
    for batch in unwritten:
        payout_file.write_batch(settings, batch)
        summary.batches.append(batch)
    if name == API:
        client = RefundApiClient(api or api_settings(url="", key=""))  # none given: the error names the variables
        for refund in accepted:
            _resolve(settings, client, refund, summary, clock, resend=False)
        for refund in unanswered:
            _resolve(settings, client, refund, summary, clock, resend=True)
        _pay_approved(settings, client, summary, clock)
    else:
        now = clock()
        batch, summary.batched = state.atomically(settings.lake, lambda con: payout_file.claim_batch(con, settings, now=now))
        if batch:
            payout_file.write_batch(settings, batch)
            summary.batches.append(batch)
    summary.confirmations = payout_file.read_confirmations(settings, confirmation_files, now=clock())
    summary.held = state.atomically(settings.lake, lambda con: held_refunds(con, name))
    return summary


def _submitted(con, where: str, params: list[Any] = ()) -> list[dict[str, Any]]:
    return state.rows(
        con, f"SELECT * FROM refunds WHERE status = 'submitted' AND executor = 'api' AND {where} ORDER BY submitted_at, refund_id",
        params,
    )


def _pay_approved(settings: Settings, client: RefundApiClient, summary: PayoutSummary, clock: Callable[[], dt.datetime]) -> None:
    """Claim one approved refund, send it, record the answer and claim the next in one
    transaction; stop when none is left or the provider stops answering."""
    now = clock()
    refund = state.atomically(settings.lake, lambda con: _claim_next(con, now))
    while refund is not None:
        outcome = _call(settings, refund, lambda: client.submit(refund))
        summary.count(outcome)
        now = clock()

        def record_and_claim(con, sent=refund, outcome=outcome):
            _record(con, sent, outcome, now)
            return _claim_next(con, now) if outcome.status != UNKNOWN else None

        refund = state.atomically(settings.lake, record_and_claim)


def _resolve(settings, client: RefundApiClient, refund, summary: PayoutSummary, clock, *, resend: bool) -> None:
    """Ask the provider about a submitted refund; re-send it (same idempotency key) only when the
    provider has no record of it and it was never accepted."""
    try:
        known = _call(settings, refund, lambda: client.status(refund))
    except ProviderUnreachable as exc:
        _note(settings, refund, f"status unknown: {exc}")
        summary.unknown += 1
        return
    if known is None and resend:
        now = clock()
        refund = state.atomically(settings.lake, lambda con, unanswered=refund: _claim_again(con, unanswered, now))
        if refund is None:
            return  # another worker re-sent it meanwhile
        known = _call(settings, refund, lambda: client.submit(refund, asked=True))
    elif known is None:
        known = Outcome(UNKNOWN, detail=f"the provider has no record of {refund['refund_id']}, which it had accepted as {refund['provider_reference']}")
    now = clock()
    state.atomically(settings.lake, lambda con: _record(con, refund, known, now))
    summary.count(known)


def _call(settings: Settings, refund: dict[str, Any], call: Callable[[], Any]) -> Any:
    """Talk to the provider (no warehouse connection is open here); an answer a person must look
    at is noted on the refund and stops the pass."""
    try:
        return call()
    except ProviderError as exc:
        _note(settings, refund, str(exc))
        raise PayoutError(f"refund {refund['refund_id']}: {exc}") from None


def _claim_next(con, now: dt.datetime) -> dict[str, Any] | None:
    """The first payable approved refund, moved to submitted (attempts + 1) before any call."""
    found = con.execute(f"SELECT refund_id FROM refunds WHERE {PAYABLE_SQL} ORDER BY approved_at, refund_id LIMIT 1").fetchone()
    if found is None:
        return None
    return state.transition(
        con, found[0], expect=(APPROVED,), to=SUBMITTED, actor=API_ACTOR, action="submit",
        why="sent to the refund provider", now=now, count_attempt=True,
        changes={"executor": API, "submitted_at": now, "provider_status": None, "last_error": None},
    )


def _claim_again(con, refund: dict[str, Any], now: dt.datetime) -> dict[str, Any] | None:
    return state.transition(
        con, refund["refund_id"], expect=(SUBMITTED,), to=SUBMITTED, actor=API_ACTOR, action="resubmit",
        why="the provider has no record of the unanswered attempt: sent again with the same idempotency key",
        now=now, count_attempt=True, expect_attempts=refund["attempts"], changes={"submitted_at": now},
    )


def _record(con, refund: dict[str, Any], outcome: Outcome, now: dt.datetime) -> None:
    refund_id = refund["refund_id"]
    if outcome.status == PAID:
        state.transition(con, refund_id, expect=(SUBMITTED,), to=state.PAID, actor=API_ACTOR, action="paid",
                         why=f"the provider paid it (reference {outcome.reference})", now=now,
                         changes={"completed_at": outcome.completed_at or now, "provider_reference": outcome.reference,
                                  "provider_status": PAID, "last_error": None})
    elif outcome.status == FAILED:
        state.transition(con, refund_id, expect=(SUBMITTED,), to=state.FAILED, actor=API_ACTOR, action="fail",
                         why=f"the provider could not pay it: {outcome.detail}", now=now,
                         changes={"completed_at": now, "provider_reference": outcome.reference,
                                  "provider_status": FAILED, "last_error": outcome.detail})
    elif outcome.status == PROCESSING:
        current = state.load(con, refund_id)
        if current and current["provider_reference"] != outcome.reference:
            state.transition(con, refund_id, expect=(SUBMITTED,), to=SUBMITTED, actor=API_ACTOR, action="accepted",
                             why=f"the provider accepted it as {outcome.reference}; {outcome.detail}", now=now,
                             changes={"provider_reference": outcome.reference, "provider_status": PROCESSING, "last_error": None})
    else:
        state.note_problem(con, refund_id, outcome.detail)


def _note(settings: Settings, refund: dict[str, Any], problem: str) -> None:
    state.atomically(settings.lake, lambda con: state.note_problem(con, refund["refund_id"], problem))


def held_refunds(con, executor: str) -> list[str]:
    """Approved refunds this executor cannot pay now, each with what a person should do."""
    reversed_cip = [r[0] for r in con.execute(
        f"SELECT refund_id FROM refunds WHERE status = 'approved' AND NOT ({PAYABLE_SQL}) ORDER BY refund_id"
    ).fetchall()]
    no_account = [] if executor != PAYOUT_FILE else [r[0] for r in con.execute(
        f"SELECT refund_id FROM refunds WHERE {PAYABLE_SQL} AND beneficiary_account IS NULL ORDER BY refund_id"
    ).fetchall()]
    return ([f"{r}: its CIP is no longer paid (reversed?); reject it" for r in reversed_cip]
            + [f"{r}: no beneficiary account for the bank transfer; record it with `pagorecon refunds set-account`" for r in no_account])
