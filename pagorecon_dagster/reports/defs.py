"""Reports' Dagster definitions."""

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.reports.assets import report_assets


def build(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=report_assets(settings))
