"""The main job: what one run over a store x day window materializes."""

import dagster as dg

MAIN_JOB = "reconcile"
# Asset groups the main job materializes for a store x day window (all on the same partitions).
MAIN_JOB_GROUPS = ("ingestion", "reconciliation", "alerts", "reports")
# Refund intake belongs to the run (the day's alerts and reports see the day's refunds); paying
# out, the rest of group `refunds`, is the sensor-started `refund_payout` job.
MAIN_JOB_ASSETS = ("refunds",)


def main_job():
    return dg.define_asset_job(
        MAIN_JOB,
        selection=dg.AssetSelection.groups(*MAIN_JOB_GROUPS) | dg.AssetSelection.assets(*MAIN_JOB_ASSETS),
        description="Ingest landing/, bring the current state up to date, reconcile, summarize, take refunds in, alert and "
        "report the selected store x day partitions.",
    )
