"""Store connections' Dagster definitions: the jobs that pull API stores' orders into landing/."""

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.stores.shopify import shopify_pull_job


def build(settings: Settings) -> dg.Definitions:
    return dg.Definitions(jobs=[shopify_pull_job()])
