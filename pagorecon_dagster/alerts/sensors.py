"""Alert sensors: delivery of pending alerts, and a RUN_FAILED alert for every failed run."""

import datetime as dt
import logging

import dagster as dg
import duckdb

from pagorecon_dagster.alerts.delivery import deliver_pending
from pagorecon_dagster.alerts.run_failures import record_run_failure
from pagorecon_dagster.config import Settings
from pagorecon_dagster.warehouse.duckdb import connect

DELIVERY_INTERVAL_SECONDS = 60
# A sensor tick must finish within Dagster's sensor timeout; a run holding the warehouse longer
# than this makes the tick skip and try again later (nothing is lost: the rows stay pending).
LOCK_WAIT_SECONDS = 20
# Failed runs looked for again by the delivery sensor, in case the run-failure sensor could not
# write its alert (the warehouse was busy for longer than a tick).
CATCH_UP = dt.timedelta(days=7)

logger = logging.getLogger("pagorecon.alerts")


def alert_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    warehouse = settings.warehouse_path

    def open_warehouse():
        return connect(warehouse, wait_seconds=LOCK_WAIT_SECONDS)

    @dg.sensor(
        name="alert_delivery",
        minimum_interval_seconds=DELIVERY_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Delivers undelivered alerts to the log and to $PAGORECON_ALERT_WEBHOOK_URL; failed deliveries are retried on later ticks.",
    )
    def alert_delivery(context: dg.SensorEvaluationContext):
        def log(text: str) -> None:
            context.log.warning(text)
            logger.warning(text)

        try:
            caught_up = catch_up_run_failures(context.instance, open_warehouse)
            report = deliver_pending(open_warehouse, log)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            return dg.SkipReason(f"warehouse busy (a run holds it), trying again next tick: {exc}")
        if not report.delivered and not report.failed:
            return dg.SkipReason(f"no alert to deliver ({caught_up} failed run(s) recorded)")
        for alert_id, error in report.failed.items():
            context.log.error(f"alert {alert_id} not delivered, will retry: {error}")
        return dg.SkipReason(f"delivered {len(report.delivered)} alert(s), {len(report.failed)} failed and will be retried")

    @dg.run_failure_sensor(
        name="run_failed_alert",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Writes a RUN_FAILED alert for every failed run of this code location.",
    )
    def run_failed_alert(context: dg.RunFailureSensorContext):
        with open_warehouse() as con:
            record_run_failure(con, context.instance, context.dagster_run)

    return [alert_delivery, run_failed_alert]


def catch_up_run_failures(instance: dg.DagsterInstance, open_warehouse) -> int:
    """Record RUN_FAILED for recent failed runs that have none yet (idempotent)."""
    since = dt.datetime.now(dt.timezone.utc) - CATCH_UP
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], updated_after=since), limit=100
    )
    if not records:
        return 0
    with open_warehouse() as con:
        return sum(record_run_failure(con, instance, record.dagster_run) for record in records)
