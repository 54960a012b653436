"""Refunds in Dagster: the `refunds` asset (intake: create, check, decide), materialized by every
run of the main `reconcile` job after the reconciliation and before the alerts; and the
`refund_payouts` asset (pay approved refunds through the executor, match bank confirmations),
materialized by the separate `refund_payout` job that the `refund_payout_sensor` starts when
something is waiting."""

from typing import Optional

import dagster as dg
from pydantic import Field

from pagorecon_dagster.refunds.intake import intake
from pagorecon_dagster.refunds.payout import API, DEFAULT_IN_FLIGHT_GRACE_SECONDS, executor_name, pay_out
from pagorecon_dagster.resources import PagoreconHome, RefundProvider
from pagorecon_dagster.warehouse.duckdb import WRITES

GROUP = "refunds"
JOB = "refund_payout"


class PayoutConfig(dg.Config):
    executor: str = Field(default="", description="api | payout_file. Empty: $PAGORECON_REFUND_EXECUTOR, else "
                          "`refunds.executor` in pagorecon.yaml, else api when $PAGORECON_REFUND_API_URL is set, else payout_file.")
    timeout_seconds: Optional[float] = Field(default=None, description="per provider call; empty: $PAGORECON_REFUND_API_TIMEOUT_SECONDS, else 10")
    max_attempts: int = Field(default=4, description="provider calls per refund and pass (timeouts and 5xx are retried)")
    backoff_seconds: float = Field(default=0.5, description="first wait between attempts; doubles each time")
    max_retry_after_seconds: float = Field(default=60.0, description="longest Retry-After (408, 425, 429) a pass waits; "
                                           "a longer one leaves the refund for a later run")
    in_flight_grace_seconds: float = Field(default=DEFAULT_IN_FLIGHT_GRACE_SECONDS,
                                           description="a submitted refund without an answer is resolved once it is this old")


@dg.asset(
    name="refunds",
    group_name=GROUP,
    deps=["recon_items", "refund_request_rows"],
    kinds={"duckdb"},
    description="Refunds requested in landing/refunds/ and proposed from refund-candidate recon items: "
    "created once, checked (reason codes), auto-approved up to the store's limit or left for a person. "
    "Taken in by every run of the main job; never paid out there.",
)
def refunds(context: dg.AssetExecutionContext, pagorecon: PagoreconHome) -> dg.MaterializeResult:
    settings = pagorecon.settings()
    with pagorecon.warehouse() as con:
        summary = intake(con, settings)
        by_status = dict(con.execute("SELECT status, count(*) FROM refunds GROUP BY status ORDER BY status").fetchall())
    if summary.missing_tables:
        context.log.warning(f"reconciliation has not run yet (no {', '.join(summary.missing_tables)}): nothing to check refunds against")
    context.log.info(f"{summary.total} new refund(s): {dict(summary.decided)}")
    return dg.MaterializeResult(
        metadata={
            "new_refunds": dg.MetadataValue.int(summary.total),
            "new_by_source": dg.MetadataValue.json(dict(summary.created)),
            "new_by_status": dg.MetadataValue.json(dict(summary.decided)),
            "rejection_reasons": dg.MetadataValue.json(dict(summary.rejections)),
            **{f"refunds_{status}": dg.MetadataValue.int(n) for status, n in by_status.items()},
        }
    )


@dg.asset(
    group_name=GROUP,
    deps=[refunds],
    kinds={"duckdb"},
    description="Approved refunds paid out exactly once through the executor (api provider or bank-transfer "
    "batch file), and bank confirmations matched back (table refund_confirmations).",
    metadata={WRITES: ["refunds", "refund_confirmations"]},
)
def refund_payouts(context: dg.AssetExecutionContext, config: PayoutConfig, pagorecon: PagoreconHome,
                   refund_provider: RefundProvider) -> dg.MaterializeResult:
    settings = pagorecon.settings()
    name = executor_name(settings, config.executor or None, refund_provider)
    api = None
    if name == API:
        tuning = {"max_attempts": config.max_attempts, "backoff_seconds": config.backoff_seconds,
                  "max_retry_after_seconds": config.max_retry_after_seconds}
        if config.timeout_seconds is not None:
            tuning["timeout_seconds"] = config.timeout_seconds
        api = refund_provider.api_settings(**tuning)
    # pay_out opens the warehouse only for short transactions: no connection during provider calls.
    summary = pay_out(settings, executor=name, api=api, in_flight_grace_seconds=config.in_flight_grace_seconds)
    for held in summary.held:
        context.log.warning(f"held: {held}")
    context.log.info(
        f"executor {name}: {summary.paid} paid, {summary.failed} failed, {summary.processing} processing, "
        f"{summary.unknown} without answer, {summary.batched} put in batch(es) {', '.join(summary.batches) or '-'}"
    )
    return dg.MaterializeResult(
        metadata={
            "executor": name,
            "paid": dg.MetadataValue.int(summary.paid),
            "failed": dg.MetadataValue.int(summary.failed),
            "processing": dg.MetadataValue.int(summary.processing),
            "without_answer": dg.MetadataValue.int(summary.unknown),
            "batched": dg.MetadataValue.int(summary.batched),
            "batch_files": dg.MetadataValue.json(summary.batches),
            "confirmations": dg.MetadataValue.json(summary.confirmations),
            "held": dg.MetadataValue.json(summary.held),
        }
    )


refund_payout_job = dg.define_asset_job(
    JOB,
    selection=dg.AssetSelection.assets(refund_payouts),
    description="Pay approved refunds out exactly once and match bank confirmations (the main job takes refunds in).",
)
