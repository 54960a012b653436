"""`refund_payout_sensor`: starts the `refund_payout` job when something is waiting — approved
refunds, provider answers to fetch, batch files to write, bank confirmations to match — and no
such run is already going. New requests and proposals are taken in by the main job's runs."""

import datetime as dt

import dagster as dg
import duckdb

from pagorecon_dagster.config import Settings
from pagorecon_dagster.refunds import intake, payout_file
from pagorecon_dagster.refunds.assets import refund_payout_job
from pagorecon_dagster.refunds.payout import API, DEFAULT_IN_FLIGHT_GRACE_SECONDS, PAYOUT_FILE, executor_name
from pagorecon_dagster.refunds.state import PAYABLE_SQL, now_utc
from pagorecon_dagster.resources import PagoreconHome, RefundProvider

ACTIVE_RUN_STATUSES = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
]


def waiting_work(con: duckdb.DuckDBPyConnection, settings: Settings, now: dt.datetime,
                 provider: RefundProvider | None = None) -> dict[str, int]:
    """What a refund_payout run would find to do, by kind (all zero: nothing to do)."""
    work = {"approved": 0, "in_flight": 0, "unwritten_batches": 0,
            "confirmation_files": len(payout_file.unread_confirmation_files(settings, con))}
    if intake.missing_tables(con):
        return work
    executor = executor_name(settings, provider=provider)
    account = " AND beneficiary_account IS NOT NULL" if executor == PAYOUT_FILE else ""
    work["approved"] = con.execute(f"SELECT count(*) FROM refunds WHERE {PAYABLE_SQL}{account}").fetchone()[0]
    if executor == API:
        cutoff = now - dt.timedelta(seconds=DEFAULT_IN_FLIGHT_GRACE_SECONDS)
        work["in_flight"] = con.execute(
            """SELECT count(*) FROM refunds WHERE status = 'submitted' AND executor = 'api'
                 AND (provider_reference IS NOT NULL OR submitted_at <= ?)""", [cutoff]
        ).fetchone()[0]
    work["unwritten_batches"] = con.execute(
        "SELECT count(DISTINCT payout_batch) FROM refunds WHERE provider_status = ?", [payout_file.BATCH_PENDING]
    ).fetchone()[0]
    return work


@dg.sensor(
    name="refund_payout_sensor",
    job=refund_payout_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts refund_payout when refunds wait (approved, unanswered, unconfirmed) and none is running.",
)
def refund_payout_sensor(context: dg.SensorEvaluationContext, pagorecon: PagoreconHome, refund_provider: RefundProvider):
    active = context.instance.get_runs(filters=dg.RunsFilter(job_name=refund_payout_job.name, statuses=ACTIVE_RUN_STATUSES), limit=1)
    if active:
        return dg.SkipReason(f"run {active[0].run_id} of {refund_payout_job.name} is still going")
    settings = pagorecon.settings()
    with pagorecon.warehouse() as con:
        work = waiting_work(con, settings, now_utc(), refund_provider)
    waiting = {kind: n for kind, n in work.items() if n}
    if not waiting:
        return dg.SkipReason("no refund is waiting")
    summary = ", ".join(f"{kind}={n}" for kind, n in waiting.items())
    context.log.info(f"starting {refund_payout_job.name}: {summary}")
    return dg.RunRequest(tags={"pagorecon/refunds_waiting": summary})
