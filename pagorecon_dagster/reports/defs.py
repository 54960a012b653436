"""Reports' Dagster definitions: the three report assets and the index page, the assets that email
two of them (delivery/), the jobs that write and those that email the per-date and per-store-x-month
reports and the index, the automation sensor that starts them after a reconciliation, and the
`mailer` resource."""

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.delivery.assets import EMAILS, MAILER, email_assets
from pagorecon_dagster.delivery.jobs import email_jobs
from pagorecon_dagster.delivery.mailer import mailer
from pagorecon_dagster.jobs import report_jobs
from pagorecon_dagster.reports.assets import FOLLOWING_REPORTS, INDEX, report_assets

SENSOR = "reports_follow_reconciliation"


def build(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[*report_assets(settings), *email_assets(settings)],
        jobs=[*report_jobs(), *email_jobs()],
        sensors=[
            dg.AutomationConditionSensorDefinition(
                SENSOR,
                target=dg.AssetSelection.assets(*FOLLOWING_REPORTS, *EMAILS.values(), INDEX),
                default_status=dg.DefaultSensorStatus.RUNNING,
                description="Writes the all-stores and month-close reports of the dates and store x months that a "
                "reconciliation run changed, once nothing they read is still running, and emails them; then the "
                "index page reports/index.html.",
            )
        ],
        resources={MAILER: mailer(settings)},
    )
