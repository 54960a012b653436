"""`recon_items` and `recon_daily_summary`, per store x Lima-day partition. A run over a range
reconciles the whole window at once (single-run backfills): delete the window, insert it. Each
asset evaluates its checks (reconciliation/checks.py) over that window right after writing it."""

import warnings

import dagster as dg

from pagorecon_dagster import progress
from pagorecon_dagster.config import Settings
from pagorecon_dagster.partitions import parse_keys, store_day_partitions
from pagorecon_dagster.reconciliation.checks import check_specs, evaluate
from pagorecon_dagster.reconciliation.models import reconcile, summarize, window_of
from pagorecon_dagster.resources import PagoreconHome
from pagorecon_dagster.warehouse.duckdb import WRITES

GROUP = "reconciliation"

# Single-run backfills are what range runs need; Dagster still labels the parameter beta.
warnings.filterwarnings("ignore", category=dg.BetaWarning)


def reconciliation_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    partitions_def = store_day_partitions(settings)
    policy = dg.BackfillPolicy.single_run()

    def _window(context: dg.AssetExecutionContext):
        return window_of(parse_keys(partitions_def, context.partition_keys))

    @dg.asset(
        partitions_def=partitions_def,
        backfill_policy=policy,
        group_name=GROUP,
        deps=["orders", "payments", "reference_counts", "fx_rates", "statement_coverage", "business_calendar"],
        kinds={"duckdb", "sql"},
        description="One row per reconciled item (docs/reconciliation.md): every PagoEfectivo order once, plus every extra or orphan paid CIP. "
        "Stored in table recon_item_rows; recon_items is the view over it that everyone reads.",
        metadata={WRITES: ["recon_item_rows", "recon_items"]},
        check_specs=check_specs("recon_items"),
    )
    def recon_items(context: dg.AssetExecutionContext, pagorecon: PagoreconHome):
        window = _window(context)
        config = pagorecon.settings()
        progress.update(f"reconciling {', '.join(window.stores)} {window.start}..{window.end}")
        with pagorecon.warehouse() as con:
            rows = reconcile(con, config, window, context.run.run_id)
            by_status = dict(
                con.execute(
                    f"SELECT status, count(*) FROM recon_items WHERE {window.predicate} GROUP BY status ORDER BY status"
                ).fetchall()
            )
            context.log.info(f"reconciled {rows} items for {', '.join(window.stores)} {window.start}..{window.end}")
            progress.step(f"reconciled {rows:,} items for {', '.join(window.stores)} {window.start}..{window.end}")
            yield dg.MaterializeResult(
                metadata={
                    "rows": dg.MetadataValue.int(rows),
                    "window": f"{','.join(window.stores)} {window.start}..{window.end}",
                    **{f"items_{status}": dg.MetadataValue.int(n) for status, n in by_status.items()},
                }
            )
            yield from evaluate("recon_items", con, config, window)

    @dg.asset(
        partitions_def=partitions_def,
        backfill_policy=policy,
        group_name=GROUP,
        deps=[recon_items],
        kinds={"duckdb", "sql"},
        description="Items, order totals and paid amounts per store, Lima date, currency and status.",
        metadata={WRITES: ["recon_daily_summary"]},
        check_specs=check_specs("recon_daily_summary"),
    )
    def recon_daily_summary(context: dg.AssetExecutionContext, pagorecon: PagoreconHome):
        window = _window(context)
        config = pagorecon.settings()
        with pagorecon.warehouse() as con:
            rows = summarize(con, config, window)
            yield dg.MaterializeResult(metadata={"rows": dg.MetadataValue.int(rows)})
            yield from evaluate("recon_daily_summary", con, config, window)

    return [recon_items, recon_daily_summary]
