"""Alerts' Dagster definitions: the `alerts` asset, the jobs that deliver alerts and record failed
runs, the sensors that request them, and the `alert_channel` resource the delivery posts through."""

import dagster as dg

from pagorecon_dagster.alerts.assets import alert_assets
from pagorecon_dagster.resources import alert_channel_from_environment
from pagorecon_dagster.alerts.jobs import alert_jobs
from pagorecon_dagster.alerts.sensors import alert_sensors
from pagorecon_dagster.config import Settings


def build(settings: Settings) -> dg.Definitions:
    jobs = alert_jobs()
    return dg.Definitions(
        assets=alert_assets(settings),
        jobs=jobs,
        sensors=alert_sensors(*jobs),
        resources={"alert_channel": alert_channel_from_environment()},
    )
