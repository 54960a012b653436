"""Refunds in `pagorecon demo`: the demo's run has taken the proposals in (approved within each
store's limit, the rest left for a person); the sandbox provider then plays the aggregator while
one run of the `refund_payout` job pays the approved ones out."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.money import format_cents
from pagorecon_dagster.refunds.assets import JOB
from pagorecon_dagster.refunds.payout import EXECUTOR_ENV
from pagorecon_dagster.refunds.provider_api import KEY_ENV, URL_ENV
from pagorecon_dagster.refunds.sandbox_provider import SandboxRefundProvider
from pagorecon_dagster.warehouse.duckdb import connect

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_demo_refunds(settings: Settings, instance: dg.DagsterInstance) -> list[str]:
    """Run `refund_payout` once against a sandbox provider; return lines saying what happened."""
    from pagorecon_dagster.definitions import build_definitions

    job = build_definitions(settings).resolve_job_def(JOB)
    with SandboxRefundProvider() as provider, _environment(
        {URL_ENV: provider.url, KEY_ENV: provider.api_key, EXECUTOR_ENV: "api"}
    ):
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET)
        payouts = len(provider.ledger())
    with connect(settings.warehouse_path) as con:
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
