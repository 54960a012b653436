"""Orchestration's Dagster definitions: the daily schedule, the landing sensor, the hourly sync,
the monthly retention job, the weekly warehouse maintenance, and the health checks with their job and schedule."""

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.orchestration.health import health_checks, health_job, health_schedule
from pagorecon_dagster.orchestration.hourly import hourly_job, hourly_reconcile_sensor, hourly_schedule
from pagorecon_dagster.orchestration.schedules import daily_schedule
from pagorecon_dagster.orchestration.sensors import landing_sensor
from pagorecon_dagster.retention import retention_job, retention_schedule
from pagorecon_dagster.warehouse.maintain import maintain_job, maintain_schedule


def build(settings: Settings) -> dg.Definitions:
    hourly = hourly_job()
    return dg.Definitions(
        jobs=[hourly, retention_job, maintain_job, health_job()],
        schedules=[daily_schedule(settings), hourly_schedule(settings, hourly), retention_schedule(settings),
                   maintain_schedule(settings), health_schedule(settings)],
        sensors=[landing_sensor(settings), hourly_reconcile_sensor(settings, hourly)],
        asset_checks=health_checks,
    )
