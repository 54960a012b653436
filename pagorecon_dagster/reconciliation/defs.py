"""Reconciliation's Dagster definitions."""

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.reconciliation.assets import reconciliation_assets
from pagorecon_dagster.reconciliation.checks import reconciliation_checks


def build(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=reconciliation_assets(settings), asset_checks=reconciliation_checks)
