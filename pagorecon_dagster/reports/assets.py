"""The report assets, on the same store x Lima-day partitions as `recon_items` so the `reconcile`
job writes them with the reconciliation. A range run reads the whole window once and writes every
report the window touches. One factory serves the three."""

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import dagster as dg
import duckdb

from pagorecon_dagster import progress
from pagorecon_dagster.config import Settings
from pagorecon_dagster.partitions import parse_keys, store_day_partitions
from pagorecon_dagster.reports.content import Report
from pagorecon_dagster.reports.window import Keys, all_stores_reports, daily_reports, month_close_reports
from pagorecon_dagster.reports.writer import FORMATS, write_report
from pagorecon_dagster.resources import PagoreconHome

GROUP = "reports"
METADATA_LISTED_REPORTS = 100  # a year-long backfill writes thousands: the UI lists the first ones

warnings.filterwarnings("ignore", category=dg.BetaWarning)

BuildReports = Callable[[Settings, duckdb.DuckDBPyConnection, Keys], list[Report]]


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


def report_asset(settings: Settings, name: str, folder: str, build: BuildReports, description: str) -> dg.AssetsDefinition:
    partitions_def = store_day_partitions(settings)

    @dg.asset(
        name=name,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=GROUP,
        deps=["recon_items", "recon_daily_summary", "refunds"],
        kinds={"html", "csv", "xlsx"},
        description=description,
    )
    def _report(context: dg.AssetExecutionContext, pagorecon: PagoreconHome) -> dg.MaterializeResult:
        config = pagorecon.settings()
        keys = parse_keys(partitions_def, context.partition_keys)
        with pagorecon.warehouse() as con:  # read everything, then let the warehouse go before writing files
            reports = build(config, con, keys)
        written = [write_report(report, config.reports) for report in reports]
        context.log.info(f"{name}: wrote {len(reports)} report(s) under {config.reports / folder}")
        progress.step(f"{name}: {len(reports)} report(s) in {config.reports / folder}")
        return dg.MaterializeResult(metadata=report_metadata(config.reports, folder, reports, written))

    return _report


def report_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    return [
        report_asset(
            settings, "daily_store_report", "daily", daily_reports,
            "Per store and Lima date: totals by status and currency, discrepancies with evidence and suggested action, "
            "payments with commission and IGV, refunds of the day, expected net. HTML, CSV and XLSX under reports/daily/.",
        ),
        report_asset(
            settings, "all_stores_report", "all_stores", all_stores_reports,
            "Every store on one Lima date: one table and one chart. Rewritten for every date of the run's window. "
            "HTML, CSV and XLSX under reports/all_stores/.",
        ),
        report_asset(
            settings, "month_close_report", "month_close", month_close_reports,
            "Month close per store and currency: gross, reversals, commissions, IGV, refunds, net, open items by age and "
            "the bridge from the sum of orders to the net. Rewritten for every month the run's window touches. "
            "HTML, CSV and XLSX under reports/month_close/.",
        ),
    ]
