"""The alert jobs the alert sensors request: `deliver_alerts` sends undelivered alerts,
`record_run_failure` writes the RUN_FAILED alerts of failed runs. Both retry with RETRY_POLICY;
what still fails stays for a later run (an alert stays undelivered, a failed run stays unrecorded
until the delivery sensor catches it up)."""

import logging

import dagster as dg

from pagorecon_dagster.alerts.channel import AlertChannel
from pagorecon_dagster.alerts.delivery import deliver_pending
from pagorecon_dagster.alerts.run_failures import record_run_failure
from pagorecon_dagster.resources import PagoreconHome

DELIVER_ALERTS = "deliver_alerts"
RECORD_RUN_FAILURE = "record_run_failure"
# Runs of these jobs are never alerted as RUN_FAILED: a failed delivery would raise an alert that
# needs delivering, and a failed recording would ask to record itself, without end.
ALERT_JOBS = frozenset({DELIVER_ALERTS, RECORD_RUN_FAILURE})
# Ops are named apart from their jobs: a repository refuses an op and a job of one name.
DELIVER_OP = "deliver_pending_alerts"
RECORD_OP = "record_failed_runs"
# Three more attempts, waiting 5 s, then 15 s, then 35 s: a webhook or warehouse that is
# briefly away does not wait for the next sensor tick.
RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL)

logger = logging.getLogger("pagorecon.alerts")


class FailedRuns(dg.Config):
    run_ids: list[str]


@dg.op(name=DELIVER_OP)
def deliver_alerts_op(context: dg.OpExecutionContext, pagorecon: PagoreconHome, alert_channel: AlertChannel) -> dg.Output[int]:
    def log(text: str) -> None:
        context.log.warning(text)
        logger.warning(text)

    report = deliver_pending(pagorecon.warehouse, log, alert_channel)
    for alert_id, error in report.failed.items():
        context.log.error(f"alert {alert_id} not delivered: {error}")
    if report.failed:
        raise dg.Failure(
            f"{len(report.failed)} alert(s) not delivered ({', '.join(sorted(report.failed))}); "
            f"{len(report.delivered)} delivered. They stay undelivered, with their delivery_error, until a run gets them through.",
            metadata={"delivered": len(report.delivered), "failed": len(report.failed)},
        )
    return dg.Output(len(report.delivered), metadata={"delivered": len(report.delivered), "webhook": alert_channel.has_webhook})


@dg.op(name=RECORD_OP)
def record_run_failure_op(context: dg.OpExecutionContext, config: FailedRuns, pagorecon: PagoreconHome) -> dg.Output[int]:
    runs = [context.instance.get_run_by_id(run_id) for run_id in config.run_ids]
    unknown = [run_id for run_id, run in zip(config.run_ids, runs) if run is None]
    if unknown:
        raise dg.Failure(f"no run {', '.join(unknown)} in this Dagster instance: check `run_ids` in the run config",
                         allow_retries=False)
    with pagorecon.warehouse() as con:
        recorded = [run.run_id for run in runs if record_run_failure(con, context.instance, run)]
    context.log.info(f"RUN_FAILED recorded for {len(recorded)} of {len(runs)} failed run(s): {', '.join(recorded) or 'none new'}")
    return dg.Output(len(recorded), metadata={"recorded": len(recorded), "already_recorded": len(runs) - len(recorded)})


def alert_jobs() -> list[dg.JobDefinition]:
    """Built when the definitions are (RETRY_POLICY is read then)."""

    @dg.job(name=DELIVER_ALERTS, op_retry_policy=RETRY_POLICY,
            description="Delivers undelivered alerts (50 a run, oldest first) to the log and the alert_channel webhook.")
    def deliver_alerts():
        deliver_alerts_op()

    @dg.job(name=RECORD_RUN_FAILURE, op_retry_policy=RETRY_POLICY,
            description="Writes one RUN_FAILED alert for each failed run in `run_ids` that has none yet.")
    def record_run_failure_job():
        record_run_failure_op()

    return [deliver_alerts, record_run_failure_job]
