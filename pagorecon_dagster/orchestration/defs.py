"""Orchestration's Dagster definitions: the daily schedule and the landing sensor."""

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.orchestration.schedules import daily_schedule
from pagorecon_dagster.orchestration.sensors import landing_sensor


def build(settings: Settings) -> dg.Definitions:
    return dg.Definitions(schedules=[daily_schedule(settings)], sensors=[landing_sensor(settings)])
