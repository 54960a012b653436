"""Thin Python around `dbt_like_sql/`: bind the window, write the result. The SQL decides."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.lima import business_calendar
from pagorecon_dagster.warehouse.duckdb import (
    Refresh,
    build_table,
    build_view,
    refresh_latest,
    replace_window,
    set_variables,
    table_type,
)

CURRENT_STATE_MODELS = ("orders", "payments", "fx_rates", "statement_coverage")
# Latest-version tables refreshed file by file: their raw table and their key.
LATEST_VERSION_MODELS = {
    "orders": ("order_rows", ("store_id", "order_id")),
    "payments": ("statement_rows", ("store_id", "cip")),
}


@dataclass(frozen=True)
class Window:
    """The store x Lima-date rectangle a run reconciles."""

    stores: tuple[str, ...]
    start: dt.date
    end: dt.date

    def variables(self, settings: Settings) -> dict[str, object]:
        return {
            "stores": list(self.stores),
            "start_date": self.start,
            "end_date": self.end,
            "fx_tolerance_pct": settings.fx_tolerance_pct,
            "grace_business_days": settings.missing_payment_grace_business_days,
        }

    @property
    def predicate(self) -> str:
        return "in_window(store_id, business_date)"


def refresh_current_state(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, int]:
    """Bring the latest-version tables and the business calendar up to date with the raw rows."""
    counts = {name: refresh_model(con, name).rows for name in CURRENT_STATE_MODELS}
    refresh_calendar(con, settings)
    return counts


def refresh_model(con: duckdb.DuckDBPyConnection, name: str) -> Refresh:
    """Orders and payments read only the files ingested since their last refresh; the small
    models (fx_rates, statement_coverage) are rebuilt whole."""
    if name in LATEST_VERSION_MODELS:
        raw_table, keys = LATEST_VERSION_MODELS[name]
        return refresh_latest(con, name, raw_table, keys)
    rows = build_table(con, name)
    return Refresh("full", rows, rows)


def refresh_calendar(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    lo, hi = con.execute(
        """SELECT min(d), max(d) FROM (
               SELECT min(business_date) AS d FROM order_rows UNION ALL SELECT max(business_date) FROM order_rows
               UNION ALL SELECT min(payment_date) FROM statement_rows UNION ALL SELECT max(payment_date) FROM statement_rows
               UNION ALL SELECT max(creation_date) FROM statement_rows)"""
    ).fetchone()
    first = min(d for d in (lo, settings.start_date) if d is not None) - dt.timedelta(days=31)
    last = max(d for d in (hi, settings.start_date) if d is not None) + dt.timedelta(days=400)
    frame = business_calendar(first, last, settings.extra_non_working_days)  # noqa: F841 (read by DuckDB below)
    con.execute("BEGIN")
    con.execute("DELETE FROM business_calendar")
    con.execute("INSERT INTO business_calendar SELECT day, is_business_day, business_day_seq FROM frame")
    con.execute("COMMIT")


# A window holding at most this share of its stores' PagoEfectivo orders is narrow: the model then
# counts only the references the window can see (a day of 10M orders: 3.9 s instead of 8.1 s).
# Above it, counting every reference is cheaper (benchmarks/README.md).
NARROW_WINDOW_SHARE = 0.2


def reconcile(con: duckdb.DuckDBPyConnection, settings: Settings, window: Window) -> int:
    """Write the window's items to `recon_item_rows`; `recon_items` is the view that reads them."""
    _keep_items_of_older_warehouse(con)
    variables = window.variables(settings)
    set_variables(con, variables)
    inside, stores_total = con.execute(
        "SELECT count(*) FILTER (WHERE in_window(store_id, business_date)), count(*) "
        "FROM orders WHERE is_pagoefectivo AND in_stores(store_id)"
    ).fetchone()
    variables["narrow_window"] = inside <= stores_total * NARROW_WINDOW_SHARE
    inserted = replace_window(con, "recon_item_rows", window.predicate, variables)
    build_view(con, "recon_items")
    return inserted


def _keep_items_of_older_warehouse(con: duckdb.DuckDBPyConnection) -> None:
    """Before `recon_item_rows`, `recon_items` was a table with every sentence stored: its rows
    move over as they are (their evidence kept word for word), so no reconciled day is lost."""
    if table_type(con, "recon_items") != "BASE TABLE":
        return
    con.execute("BEGIN")
    try:
        con.execute(
            "INSERT INTO recon_item_rows BY NAME SELECT * EXCLUDE (evidence), "
            "CAST(NULL AS TIMESTAMPTZ) AS paid_at, evidence AS evidence_detail FROM recon_items"
        )
        con.execute("DROP TABLE recon_items")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def summarize(con: duckdb.DuckDBPyConnection, settings: Settings, window: Window) -> int:
    return replace_window(con, "recon_daily_summary", window.predicate, window.variables(settings))


def window_of(partition_keys: Sequence[tuple[str, dt.date]]) -> Window:
    stores = tuple(sorted({s for s, _ in partition_keys}))
    dates = [d for _, d in partition_keys]
    return Window(stores, min(dates), max(dates))
