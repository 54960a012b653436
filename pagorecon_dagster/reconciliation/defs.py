"""Reconciliation's Dagster definitions."""

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.reconciliation.assets import reconciliation_assets


def build(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=reconciliation_assets(settings))
