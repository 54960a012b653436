"""The report email assets, one per emailed report and on its partitions: after the all-stores
report of a date is written, its recipients get it; after a month close is written for a month
that is over, the recipients of that store get it. Each runs in the same run as its report (the
report's job) and follows it in Dagster's automation; a failed send is retried by RETRY_POLICY.
One factory serves both."""


import datetime as dt
from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo

import dagster as dg

from pagorecon_dagster import progress
from pagorecon_dagster.alerts.delivery import mask_message
from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.lima import LIMA_TZ
from pagorecon_dagster.delivery.mailer import Mailer
from pagorecon_dagster.delivery.send import BuildReports, Due, send_reports
from pagorecon_dagster.partitions import (
    lima_day_partitions, parse_days, parse_store_months, store_month_partitions,
)
from pagorecon_dagster.reports.all_stores import all_stores_path
from pagorecon_dagster.reports.month_close import month_close_path, month_last_day
from pagorecon_dagster.reports.window import all_stores_reports, month_close_reports
from pagorecon_dagster.resources import PagoreconHome
from pagorecon_dagster.warehouse.duckdb import WRITES

GROUP = "delivery"  # apart from "reports": the main job takes that group whole
MAILER = "mailer"
TABLE = "report_emails"
# The report asset each email asset follows.
EMAILS = {"all_stores_report": "all_stores_report_emails", "month_close_report": "month_close_report_emails"}
# Three more attempts, waiting 5 s, then 15 s, then 35 s: a mail server briefly away is tried again in the run.
RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL)
# Requested when its report was written this tick or since it last ran, once nothing it reads runs.
FOLLOWS_ITS_REPORT = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("follows_its_report")

Dues = Callable[[dg.PartitionsDefinition, Sequence[str], dt.date], list[Due]]


def lima_today() -> dt.date:
    return dt.datetime.now(ZoneInfo(LIMA_TZ)).date()


def all_stores_dues(partitions_def: dg.PartitionsDefinition, keys: Sequence[str], today: dt.date) -> list[Due]:
    return [Due(day, None, day, all_stores_path(day)) for day in parse_days(keys)]


def closed_month_dues(partitions_def: dg.PartitionsDefinition, keys: Sequence[str], today: dt.date) -> list[Due]:
    """Only months that are over: a month still running is closed (and sent) once its last day is past."""
    return [Due((store, month), store, month_last_day(month), month_close_path(store, month))
            for store, month in parse_store_months(partitions_def, keys) if month_last_day(month) < today]


def email_asset(report: str, build: BuildReports, partitions_def: dg.PartitionsDefinition, dues: Dues,
                description: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=EMAILS[report],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=GROUP,
        deps=[report],
        automation_condition=FOLLOWS_ITS_REPORT,
        retry_policy=RETRY_POLICY,
        kinds={"email"},
        metadata={WRITES: [TABLE]},
        description=description,
    )
    def _emails(context: dg.AssetExecutionContext, pagorecon: PagoreconHome, mailer: Mailer) -> dg.MaterializeResult:
        settings = pagorecon.settings()
        due = dues(partitions_def, context.partition_keys, lima_today())

        def log(text: str) -> None:
            context.log.info(mask_message(text))

        outcome = send_reports(settings, pagorecon.warehouse, mailer, build, due, run_id=context.run.run_id, log=log)
        for who, path in outcome.unconfirmed:
            context.log.warning(f"{path} to {who}: a send was started and never confirmed (row `sending` in {TABLE}); "
                                "not sent again. Delete that row to send it again.")
        metadata = {"sent": len(outcome.sent), "already_sent": outcome.already_sent,
                    "unconfirmed": len(outcome.unconfirmed), "failed": len(outcome.failed),
                    "reports": len(due), "recipients": len(settings.email.recipients), "delivery": mailer.delivery}
        if outcome.failed:
            raise dg.Failure(
                f"{len(outcome.failed)} report email(s) not sent; {len(outcome.sent)} sent. "
                + "; ".join(mask_message(f"{path} to {who}: {error}") for (who, path), error in sorted(outcome.failed.items())),
                metadata=metadata,
            )
        progress.step(f"{EMAILS[report]}: {len(outcome.sent)} email(s) sent, {outcome.already_sent} already sent")
        return dg.MaterializeResult(metadata=metadata)

    return _emails


def email_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    return [
        email_asset(
            "all_stores_report", all_stores_reports, lima_day_partitions(settings), all_stores_dues,
            "Emails the all-stores report of each date to the recipients of pagorecon.yaml `email:`, in each one's "
            "language and stores; a version already sent to a recipient is not sent again (table report_emails). "
            "Every version sent is kept under archive/reports/.",
        ),
        email_asset(
            "month_close_report", month_close_reports, store_month_partitions(settings), closed_month_dues,
            "Emails the month close of each store x month that is over to the recipients of that store; a version "
            "already sent is not sent again (table report_emails). Every version sent is kept under archive/reports/.",
        ),
    ]
