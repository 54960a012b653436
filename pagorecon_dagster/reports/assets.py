"""The report assets, each on the partitions of what it writes: the daily report per store x Lima
day (like `recon_items`, so the `reconcile` job writes it with the reconciliation), the all-stores
report per Lima date and the month close per store x month. The last two follow the
reconciliation on their own: once a run has updated some store x days and nothing upstream is
still running, the automation sensor requests exactly the dates and store x months they fall in.
A range run reads the whole window once and writes every report of it. One factory serves the
three. The page to start from, `reports/index.html`, follows the last two in turn."""

import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from pagorecon_dagster import progress
from pagorecon_dagster.config import Settings
from pagorecon_dagster.partitions import (
    every_day_of_the_store_month, every_store_of_the_day, lima_day_partitions, parse_days, parse_keys,
    parse_store_months, store_day_partitions, store_month_partitions,
)
from pagorecon_dagster.reports.content import Report
from pagorecon_dagster.reports.index import load_index, write_index
from pagorecon_dagster.reports.window import all_stores_reports, daily_reports, month_close_reports
from pagorecon_dagster.reports.writer import FORMATS, write_report
from pagorecon_dagster.resources import PagoreconHome

GROUP = "reports"
METADATA_LISTED_REPORTS = 100  # a year-long backfill writes thousands: the UI lists the first ones
# What the reports read: the reconciliation's store x day partitions, and the refunds (one table).
RECONCILED = ("recon_items", "recon_daily_summary")
REFUNDS = "refunds"
# Reports that follow the reconciliation instead of running in the `reconcile` job.
FOLLOWING_REPORTS = ("all_stores_report", "month_close_report")
# The page to start from: one file over every store and date, rewritten after those reports.
INDEX = "reports_index"

warnings.filterwarnings("ignore", category=dg.BetaWarning)

# Requested once a reconciled store x day it reads has changed and nothing it reads is still being
# written. The refunds table is no trigger: it has no partitions, so a change there would request
# every date since `start_date`; the run that reconciles a day takes its refunds in first anyway.
# Unlike `eager()`, older dates count too (a late statement re-reconciles last month), and a
# store not yet reconciled that day does not hold back the others.
FOLLOWS_RECONCILIATION = (
    dg.AutomationCondition.any_deps_updated().ignore(dg.AssetSelection.assets(REFUNDS)).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("follows_reconciliation")

# The index is requested once a report it links has been rewritten and no report is still being
# written: the all-stores and month-close runs that follow a reconciliation have both finished.
# The daily reports are written by the reconciliation itself, and the all-stores report follows it.
FOLLOWS_REPORTS = (
    dg.AutomationCondition.any_deps_updated().allow(dg.AssetSelection.assets(*FOLLOWING_REPORTS)).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("follows_reports")

BuildReports = Callable[[Settings, duckdb.DuckDBPyConnection, Any], list[Report]]
ParseKeys = Callable[[Iterable[str]], Sequence[Any]]


def report_metadata(reports_dir: Path, folder: str, reports: Sequence[Report], written: Sequence[dict[str, Path]]) -> dict:
    lines = ["| report | files |", "|---|---|"]
    for report, paths in list(zip(reports, written))[:METADATA_LISTED_REPORTS]:
        files = " ".join(f"`{paths[f].relative_to(reports_dir)}`" for f in FORMATS)
        lines.append(f"| {report.summary} | {files} |")
    if len(reports) > METADATA_LISTED_REPORTS:
        lines.append(f"| … and {len(reports) - METADATA_LISTED_REPORTS} more | `{folder}/` |")
    metadata: dict[str, object] = {
        "reports": dg.MetadataValue.int(len(reports)),
        "folder": dg.MetadataValue.path(str(reports_dir / folder)),
        "summary": dg.MetadataValue.md("\n".join(lines)),
    }
    if len(reports) == 1:
        metadata.update({fmt: dg.MetadataValue.path(str(path)) for fmt, path in written[0].items()})
    return metadata


def report_asset(
    name: str,
    folder: str,
    build: BuildReports,
    description: str,
    partitions_def: dg.PartitionsDefinition,
    parse: ParseKeys,
    mapping: dg.PartitionMapping | None = None,
    automation_condition: dg.AutomationCondition | None = None,
) -> dg.AssetsDefinition:
    @dg.asset(
        name=name,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=GROUP,
        deps=[*(dg.AssetDep(key, partition_mapping=mapping) for key in RECONCILED), REFUNDS],
        automation_condition=automation_condition,
        kinds={"html", "csv", "xlsx"},
        description=description,
    )
    def _report(context: dg.AssetExecutionContext, pagorecon: PagoreconHome) -> dg.MaterializeResult:
        config = pagorecon.settings()
        keys = parse(context.partition_keys)
        with pagorecon.warehouse() as con:  # read everything, then let the warehouse go before writing files
            reports = build(config, con, keys)
        written = [write_report(report, config.reports) for report in reports]
        context.log.info(f"{name}: wrote {len(reports)} report(s) under {config.reports / folder}")
        progress.step(f"{name}: {len(reports)} report(s) in {config.reports / folder}")
        return dg.MaterializeResult(metadata=report_metadata(config.reports, folder, reports, written))

    return _report


def report_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    store_days, store_months = store_day_partitions(settings), store_month_partitions(settings)
    return [
        report_asset(
            "daily_store_report", "daily", daily_reports,
            "Per store and Lima date: totals by status and currency, discrepancies with evidence and suggested action, "
            "payments with commission and IGV, refunds of the day, expected net. HTML, CSV and XLSX under reports/daily/.",
            store_days, lambda keys: parse_keys(store_days, keys),
        ),
        report_asset(
            "all_stores_report", "all_stores", all_stores_reports,
            "Every store on one Lima date: one table and one chart. Follows the reconciliation of any store that day. "
            "HTML, CSV and XLSX under reports/all_stores/.",
            lima_day_partitions(settings), parse_days, every_store_of_the_day(), FOLLOWS_RECONCILIATION,
        ),
        report_asset(
            "month_close_report", "month_close", month_close_reports,
            "Month close per store and currency: gross, reversals, commissions, IGV, refunds, net, open items by age and "
            "the bridge from the sum of orders to the net. Follows the reconciliation of any day of the store's month. "
            "HTML, CSV and XLSX under reports/month_close/.",
            store_months, lambda keys: parse_store_months(store_months, keys), every_day_of_the_store_month(),
            FOLLOWS_RECONCILIATION,
        ),
        reports_index,
    ]


@dg.asset(
    name=INDEX,
    group_name=GROUP,
    deps=["daily_store_report", *FOLLOWING_REPORTS, "alerts", REFUNDS, "statement_coverage"],
    automation_condition=FOLLOWS_REPORTS,
    kinds={"html"},
    description="reports/index.html, the page to start from: the latest day, per store the open discrepancies, refunds "
    "awaiting approval, how many business days its statements are behind and its open alerts, then a link to every "
    "report by month. Follows the all-stores and month-close reports.",
)
def reports_index(context: dg.AssetExecutionContext, pagorecon: PagoreconHome) -> dg.MaterializeResult:
    config = pagorecon.settings()
    with pagorecon.warehouse() as con:  # read everything, then let the warehouse go before writing the file
        page = load_index(config, con)
    path = write_index(config, page)
    context.log.info(f"{INDEX}: wrote {path}")
    progress.step(f"{INDEX}: {path}")
    return dg.MaterializeResult(metadata={
        "html": dg.MetadataValue.path(str(path)),
        "latest_day": dg.MetadataValue.text(page.latest_day.isoformat() if page.latest_day else ""),
        "open_discrepancies": dg.MetadataValue.int(sum(s.open_discrepancies for s in page.stores)),
        "refunds_awaiting_approval": dg.MetadataValue.int(sum(s.awaiting_approval for s in page.stores)),
        "open_alerts": dg.MetadataValue.int(len(page.alerts)),
    })
