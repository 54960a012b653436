"""The `alerts` asset: every partition alert kind for the run's store x day window."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from pagorecon_dagster.alerts.rules import refresh
from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.lima import LIMA_TZ
from pagorecon_dagster.partitions import parse_keys, store_day_partitions
from pagorecon_dagster.reconciliation.models import window_of
from pagorecon_dagster.resources import PagoreconHome

GROUP = "alerts"


def alert_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    partitions_def = store_day_partitions(settings)

    @dg.asset(
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=GROUP,
        deps=["recon_daily_summary", "refunds"],  # the day's refunds are taken in before its alerts
        kinds={"duckdb", "sql"},
        description="Alerts per store and Lima day (statement missing, notification mismatch, unreconciled share, "
        "refund rate, overdue refunds, missing FX rate, rejected rows); one row per kind, store and day.",
    )
    def alerts(context: dg.AssetExecutionContext, pagorecon: PagoreconHome) -> dg.MaterializeResult:
        window = window_of(parse_keys(partitions_def, context.partition_keys))
        now = dt.datetime.now(dt.timezone.utc)
        with pagorecon.warehouse() as con:
            changes = refresh(con, pagorecon.settings(), window, now=now, today=now.astimezone(ZoneInfo(LIMA_TZ)).date())
        context.log.info(
            f"alerts for {', '.join(window.stores)} {window.start}..{window.end}: {changes.raised} raised, "
            f"{changes.updated} updated, {changes.unchanged} unchanged, {changes.resolved} resolved, {changes.withdrawn} withdrawn"
        )
        return dg.MaterializeResult(
            metadata={
                "raised": changes.raised, "updated": changes.updated, "unchanged": changes.unchanged,
                "resolved": changes.resolved, "withdrawn": changes.withdrawn,
                **{f"open_{kind}": dg.MetadataValue.int(n) for kind, n in sorted(changes.by_kind.items())},
            }
        )

    return [alerts]
