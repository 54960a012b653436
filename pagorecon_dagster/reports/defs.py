"""Reports' Dagster definitions: the three report assets and the index page, the jobs that write the
per-date and per-store-x-month reports and the index, and the automation sensor that starts them
after a reconciliation."""

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.jobs import report_jobs
from pagorecon_dagster.reports.assets import FOLLOWING_REPORTS, INDEX, report_assets

SENSOR = "reports_follow_reconciliation"


def build(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=report_assets(settings),
        jobs=report_jobs(),
        sensors=[
            dg.AutomationConditionSensorDefinition(
                SENSOR,
                target=dg.AssetSelection.assets(*FOLLOWING_REPORTS, INDEX),
                default_status=dg.DefaultSensorStatus.RUNNING,
                description="Writes the all-stores and month-close reports of the dates and store x months that a "
                "reconciliation run changed, once nothing they read is still running; then the index page reports/index.html.",
            )
        ],
    )
