"""Orchestration's Dagster definitions: the daily schedule, the landing sensor and the hourly sync."""

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.orchestration.hourly import hourly_job, hourly_reconcile_sensor, hourly_schedule
from pagorecon_dagster.orchestration.schedules import daily_schedule
from pagorecon_dagster.orchestration.sensors import landing_sensor


def build(settings: Settings) -> dg.Definitions:
    hourly = hourly_job()
    return dg.Definitions(
        jobs=[hourly],
        schedules=[daily_schedule(settings), hourly_schedule(settings, hourly)],
        sensors=[landing_sensor(settings), hourly_reconcile_sensor(settings, hourly)],
    )
