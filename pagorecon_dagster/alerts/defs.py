"""Alerts' Dagster definitions."""

import dagster as dg

from pagorecon_dagster.alerts.assets import alert_assets
from pagorecon_dagster.alerts.sensors import alert_sensors
from pagorecon_dagster.config import Settings


def build(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=alert_assets(settings), sensors=alert_sensors(settings))
