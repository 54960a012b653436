"""Refunds in `pagorecon demo`: the demo's run has taken the proposals in (approved within each
store's limit, the rest left for a person); the sandbox provider then plays the aggregator while
one run of the `refund_payout` job pays the approved ones out."""

from __future__ import annotations

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.money import format_cents
from pagorecon_dagster.refunds.assets import JOB
from pagorecon_dagster.refunds.payout import API
from pagorecon_dagster.refunds.sandbox_provider import SandboxRefundProvider
from pagorecon_dagster.resources import REFUND_PROVIDER, RefundProvider
from pagorecon_dagster.warehouse.duckdb import connect

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_demo_refunds(settings: Settings, instance: dg.DagsterInstance) -> list[str]:
    """Run `refund_payout` once against a sandbox provider; return lines saying what happened."""
    from pagorecon_dagster.definitions import build_definitions

    with SandboxRefundProvider() as provider:
        sandbox = RefundProvider(url=provider.url, key=provider.api_key, executor=API)
        job = build_definitions(settings, {REFUND_PROVIDER: sandbox}).resolve_job_def(JOB)
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET)
        payouts = len(provider.ledger())
    with connect(settings.lake) as con:
        by_status = con.execute(
            "SELECT status, count(*), sum(amount_cents) FILTER (WHERE currency = 'PEN'), "
            "sum(amount_cents) FILTER (WHERE currency = 'USD') FROM refunds GROUP BY status ORDER BY status"
        ).fetchall()
        waiting = con.execute(
            "SELECT refund_id FROM refunds WHERE status = 'awaiting_approval' ORDER BY amount_cents DESC, refund_id LIMIT 1"
        ).fetchone()
    lines = [f"Refunds (run {result.run_id}{'' if result.success else ', FAILED'}; the sandbox provider made {payouts} payout(s)):"]
    for status, count, pen, usd in by_status:
        amounts = ", ".join(format_cents(int(v), c) for v, c in ((pen, "PEN"), (usd, "USD")) if v)
        lines.append(f"  {status:<18} {count:>5}  {amounts}")
    if waiting:
        lines.append(f"  a person decides: pagorecon refunds show {waiting[0]}; "
                     f"pagorecon refunds approve {waiting[0]} --note <why> (as an account on the approvers roster of pagorecon.yaml)")
    return lines
