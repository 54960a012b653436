"""Alert sensors: they only decide. `alert_delivery` requests a `deliver_alerts` run when alerts
wait, and a `record_run_failure` run for failed runs that have no RUN_FAILED alert yet;
`run_failed_alert` requests a `record_run_failure` run for every failed run, once. Posting and
writing happen in those runs, where a RetryPolicy covers them and the run log shows them."""

import datetime as dt

import dagster as dg
import duckdb

from pagorecon_dagster.alerts.jobs import ALERT_JOBS, DELIVER_ALERTS, RECORD_OP, RECORD_RUN_FAILURE
from pagorecon_dagster.alerts.rules import RUN_FAILED
from pagorecon_dagster.resources import PagoreconHome
from pagorecon_dagster.warehouse.duckdb import WarehouseMissing, connect

DELIVERY_INTERVAL_SECONDS = 60
# Failed runs looked for again by the delivery sensor, in case their recording failed or the
# run-failure sensor did not see them.
CATCH_UP = dt.timedelta(days=7)
CATCH_UP_LIMIT = 100
ACTIVE_RUN_STATUSES = [
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
]
FAILED_RUN_TAG = "pagorecon/failed_runs"


def record_request(run_ids: list[str], run_key: str | None = None) -> dg.RunRequest:
    """A `record_run_failure` run for these failed runs."""
    return dg.RunRequest(
        run_key=run_key,
        job_name=RECORD_RUN_FAILURE,
        run_config={"ops": {RECORD_OP: {"config": {"run_ids": run_ids}}}},
        tags={FAILED_RUN_TAG: ",".join(run_ids)},
    )


def alert_sensors(deliver_alerts: dg.JobDefinition, record_run_failure: dg.JobDefinition) -> list[dg.SensorDefinition]:
    @dg.sensor(
        name="alert_delivery",
        jobs=[deliver_alerts, record_run_failure],
        minimum_interval_seconds=DELIVERY_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests deliver_alerts when alerts wait to be delivered, and record_run_failure for failed runs of "
        "the last 7 days with no RUN_FAILED alert yet; skips what a run of the same job is already doing.",
    )
    def alert_delivery(context: dg.SensorEvaluationContext, pagorecon: PagoreconHome):
        instance = context.instance
        failed = recent_failed_runs(instance)
        try:
            with connect(pagorecon.settings().lake, read_only=True) as con:
                pending = con.execute("SELECT count(*) FROM alerts WHERE delivered_at IS NULL").fetchone()[0]
                recorded = recorded_failures(con, failed)
        except WarehouseMissing:
            pending, recorded = 0, set()  # nothing ran yet but failed runs: recording them creates it
        unrecorded = [run_id for run_id in failed if run_id not in recorded]
        requests, busy = [], []
        if unrecorded:
            if active_run(instance, RECORD_RUN_FAILURE):
                busy.append(f"{len(unrecorded)} failed run(s) to record wait for the {RECORD_RUN_FAILURE} run going")
            else:
                requests.append(record_request(unrecorded))
        if pending:
            if active_run(instance, DELIVER_ALERTS):
                busy.append(f"{pending} alert(s) wait for the {DELIVER_ALERTS} run going")
            else:
                requests.append(dg.RunRequest(job_name=DELIVER_ALERTS, tags={"pagorecon/alerts_pending": str(pending)}))
        if requests:
            return requests
        return dg.SkipReason("; ".join(busy) or "no alert to deliver, every failed run recorded")

    @dg.run_failure_sensor(
        name="run_failed_alert",
        request_job=record_run_failure,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests record_run_failure, once, for every failed run of this code location (runs of the alert "
        "jobs excepted).",
    )
    def run_failed_alert(context: dg.RunFailureSensorContext):
        run = context.dagster_run
        if run.job_name in ALERT_JOBS:
            return dg.SkipReason(f"run {run.run_id} of {run.job_name} is an alert job's: not alerted (no alert about alerting)")
        return record_request([run.run_id], run_key=f"{RUN_FAILED}|{run.run_id}")

    return [alert_delivery, run_failed_alert]


def active_run(instance: dg.DagsterInstance, job_name: str) -> bool:
    return bool(instance.get_run_ids(filters=dg.RunsFilter(job_name=job_name, statuses=ACTIVE_RUN_STATUSES), limit=1))


def recent_failed_runs(instance: dg.DagsterInstance) -> list[str]:
    """Failed runs of the last CATCH_UP, newest first, those of the alert jobs left out."""
    since = dt.datetime.now(dt.timezone.utc) - CATCH_UP
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], updated_after=since), limit=CATCH_UP_LIMIT
    )
    return [r.dagster_run.run_id for r in records if r.dagster_run.job_name not in ALERT_JOBS]


def recorded_failures(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> set[str]:
    """Those of `run_ids` whose RUN_FAILED alert is in the warehouse."""
    if not run_ids:
        return set()
    rows = con.execute(
        "SELECT alert_id FROM alerts WHERE alert_id IN (SELECT unnest(?))", [[f"{RUN_FAILED}|{r}" for r in run_ids]]
    ).fetchall()
    return {alert_id.split("|", 1)[1] for (alert_id,) in rows}
