"""One asset per landing folder (docs/landing-formats.md), all made by one factory, plus the latest-version
tables built from them by the SQL models and the business calendar."""


import dagster as dg

from pagorecon_dagster import progress
from pagorecon_dagster.ingestion.loader import ingest_source
from pagorecon_dagster.reconciliation.checks import CHECKS, check_specs, evaluate, window_of_run
from pagorecon_dagster.reconciliation.models import refresh_calendar, refresh_model
from pagorecon_dagster.resources import PagoreconHome
from pagorecon_dagster.warehouse.duckdb import WRITES

GROUP = "ingestion"
RAW_ASSETS = {
    "statements": ("statement_rows", "PagoEfectivo statements: CSV, /v1/cips/search JSON and notifications."),
    "orders": ("order_rows", "Store order exports (canonical or Shopify), one row per order version."),
    "fx": ("fx_rate_rows", "SBS exchange rates, PEN per unit of currency."),
    "refunds": ("refund_request_rows", "Refund requests dropped by finance."),
}


def landing_asset(kind: str) -> dg.AssetsDefinition:
    name, description = RAW_ASSETS[kind]

    @dg.asset(name=name, group_name=GROUP, description=description, kinds={"duckdb", "pandera"}, metadata={WRITES: [name]})
    def _ingest(context: dg.AssetExecutionContext, pagorecon: PagoreconHome) -> dg.MaterializeResult:
        settings = pagorecon.settings()
        with pagorecon.warehouse() as con:
            report = ingest_source(con, settings, kind, run_id=context.run.run_id, progress=progress.update)
        totals = report.totals()
        progress.step(
            f"{kind}: {totals['files_loaded']} new file(s), {totals['files_skipped']} already ingested, "
            f"{totals['files_failed']} unreadable; {totals['rows_loaded']:,} rows loaded, {totals['rows_quarantined']:,} quarantined"
        )
        for failed in report.failed:
            context.log.error(f"landing/{failed.file}: {failed.error}")
        return dg.MaterializeResult(
            metadata={
                **{k: dg.MetadataValue.int(v) for k, v in totals.items()},
                "failed_files": dg.MetadataValue.json([{"file": f.file, "error": f.error} for f in report.failed]),
            }
        )

    return _ingest


def current_state_asset(name: str, deps: list[str], description: str, writes: tuple[str, ...] = ()) -> dg.AssetsDefinition:
    """Refresh model `name` (and the tables `writes` names with it), then evaluate the checks
    reconciliation declares on it over the run's store x day window."""
    checks = CHECKS.get(name, ())

    @dg.asset(
        name=name, group_name=GROUP, deps=deps, description=description, kinds={"duckdb", "sql"},
        metadata={WRITES: [name, *writes]}, check_specs=check_specs(name) if checks else None,
    )
    def _build(context: dg.AssetExecutionContext, pagorecon: PagoreconHome):
        settings = pagorecon.settings()
        with pagorecon.warehouse() as con:
            refresh = refresh_model(con, name)
            yield dg.MaterializeResult(
                metadata={
                    "rows": dg.MetadataValue.int(refresh.rows),
                    "refresh": dg.MetadataValue.text(refresh.mode),
                    "rows_written": dg.MetadataValue.int(refresh.written),
                }
            )
            if checks:
                yield from evaluate(name, con, settings, window_of_run(context, settings))

    return _build


@dg.asset(
    group_name=GROUP, deps=["order_rows", "statement_rows"], kinds={"duckdb"}, metadata={WRITES: ["business_calendar"]},
    description="Peru business days, with holidays and the configured extra non-working days, from a month before the "
    "earliest order or payment date to 400 days after the latest.",
)
def business_calendar(pagorecon: PagoreconHome) -> dg.MaterializeResult:
    with pagorecon.warehouse() as con:
        days = refresh_calendar(con, pagorecon.settings())
    return dg.MaterializeResult(metadata={"rows": dg.MetadataValue.int(days)})


raw_assets = [landing_asset(kind) for kind in RAW_ASSETS]
current_state_assets = [
    current_state_asset(
        "orders", ["order_rows"], "Latest version of each order (store_id, order_id); reads only files new since its last refresh."
    ),
    current_state_asset("payments", ["statement_rows"], "Latest state of each CIP; reads only files new since its last refresh."),
    current_state_asset(
        "reference_counts", ["orders", "payments"],
        "References shared by several orders, carried by several CIPs or with no order, and their CIPs (table reference_cips); "
        "recounts only references that changed.",
        writes=("reference_cips",),
    ),
    current_state_asset("fx_rates", ["fx_rate_rows"], "SBS rates, latest figure per date and currency."),
    current_state_asset("statement_coverage", ["statement_rows", "order_rows"], "How far each store's statements reach."),
    business_calendar,
]
