"""`recon_items` and `recon_daily_summary`, per store x Lima-day partition. A run over a range
reconciles the whole window at once (single-run backfills): delete the window, insert it."""

import warnings

import dagster as dg

from pagorecon_dagster import progress
from pagorecon_dagster.config import Settings
from pagorecon_dagster.partitions import parse_keys, store_day_partitions
from pagorecon_dagster.reconciliation.models import reconcile, summarize, window_of
from pagorecon_dagster.resources import PagoreconHome

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
        deps=["orders", "payments", "reference_counts", "fx_rates", "statement_coverage"],
        kinds={"duckdb", "sql"},
        description="One row per reconciled item (docs/reconciliation.md): every PagoEfectivo order once, plus every extra or orphan paid CIP.",
    )
    def recon_items(context: dg.AssetExecutionContext, pagorecon: PagoreconHome) -> dg.MaterializeResult:
        window = _window(context)
        config = pagorecon.settings()
        progress.update(f"reconciling {', '.join(window.stores)} {window.start}..{window.end}")
        with pagorecon.warehouse() as con:
            rows = reconcile(con, config, window)
            by_status = dict(
                con.execute(
                    f"SELECT status, count(*) FROM recon_items WHERE {window.predicate} GROUP BY status ORDER BY status"
                ).fetchall()
            )
        context.log.info(f"reconciled {rows} items for {', '.join(window.stores)} {window.start}..{window.end}")
        progress.step(f"reconciled {rows:,} items for {', '.join(window.stores)} {window.start}..{window.end}")
        return dg.MaterializeResult(
            metadata={
                "rows": dg.MetadataValue.int(rows),
                "window": f"{','.join(window.stores)} {window.start}..{window.end}",
                **{f"items_{status}": dg.MetadataValue.int(n) for status, n in by_status.items()},
            }
        )

    @dg.asset(
        partitions_def=partitions_def,
        backfill_policy=policy,
        group_name=GROUP,
        deps=[recon_items],
        kinds={"duckdb", "sql"},
        description="Items, order totals and paid amounts per store, Lima date, currency and status.",
    )
    def recon_daily_summary(context: dg.AssetExecutionContext, pagorecon: PagoreconHome) -> dg.MaterializeResult:
        window = _window(context)
        with pagorecon.warehouse() as con:
            rows = summarize(con, pagorecon.settings(), window)
        return dg.MaterializeResult(metadata={"rows": dg.MetadataValue.int(rows)})

    return [recon_items, recon_daily_summary]
