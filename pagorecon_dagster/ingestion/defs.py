"""Ingestion's Dagster definitions."""

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.ingestion.assets import current_state_assets, raw_assets
from pagorecon_dagster.ingestion.checks import ingestion_checks


def build(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=[*raw_assets, *current_state_assets], asset_checks=ingestion_checks)
