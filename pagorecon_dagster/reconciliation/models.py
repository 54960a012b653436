"""Thin Python around `dbt_like_sql/`: bind the window, write the result. The SQL decides."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.lima import business_calendar
from pagorecon_dagster.reconciliation.diff import commit_note
from pagorecon_dagster.warehouse.duckdb import (
    Refresh,
    atomically,
    build_table,
    build_view,
    model_sql,
    refresh_latest,
    replace_window,
    set_variables,
    table_type,
)

CURRENT_STATE_MODELS = ("orders", "payments", "reference_counts", "fx_rates", "statement_coverage")
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
    """Orders and payments read only the files ingested since their last refresh, and
    reference_counts recounts only the references they changed; the small models (fx_rates,
    statement_coverage) are rebuilt whole."""
    if name in LATEST_VERSION_MODELS:
        raw_table, keys = LATEST_VERSION_MODELS[name]
        return refresh_latest(con, name, raw_table, keys, on_change=_touch_references)
    if name == "reference_counts":
        return refresh_reference_counts(con)
    rows = build_table(con, name)
    return Refresh("full", rows, rows)


def _touch_references(con: duckdb.DuckDBPyConnection, table: str, fresh: str | None) -> None:
    """Orders or CIPs are about to change (in refresh_latest's transaction): note the references of
    their old and new versions, or, for a rebuild, make the next count a full one."""
    if fresh is None:
        con.execute("DELETE FROM current_state_marks WHERE model = 'reference_counts'")
        return
    keys = LATEST_VERSION_MODELS[table][1]
    same_key = " AND ".join(f"t.{key} = f.{key}" for key in keys)
    con.execute(
        f"""INSERT INTO touched_references
            SELECT store_id, reference FROM {fresh}
            UNION
            SELECT t.store_id, t.reference FROM {table} AS t SEMI JOIN {fresh} AS f ON {same_key}"""
    )


def refresh_reference_counts(con: duckdb.DuckDBPyConnection) -> Refresh:
    """Recount the references in `touched_references` and refresh their CIPs in `reference_cips`
    (every reference, when the last count is of another version of the models or orders or
    payments were rebuilt since), in one transaction."""
    counts_sql, cips_sql = model_sql("reference_counts"), model_sql("reference_cips")
    fingerprint = hashlib.sha256(f"{counts_sql}\n{cips_sql}".encode("utf-8")).hexdigest()
    # NULL stands for the store's CIPs without a reference, which are recounted together.
    touched = "USING touched_references AS t WHERE r.store_id = t.store_id AND r.reference IS NOT DISTINCT FROM t.reference"

    def recount(con: duckdb.DuckDBPyConnection) -> tuple[str, int]:
        con.execute("RESET VARIABLE touched_only")  # an attempt that lost a conflicting commit may have set it
        mark = con.execute("SELECT fingerprint FROM current_state_marks WHERE model = 'reference_counts'").fetchone()
        if mark is None or mark[0] != fingerprint or table_type(con, "reference_cips") is None:
            mode = "full"
            con.execute("DELETE FROM reference_counts")
            written = con.execute(f"INSERT INTO reference_counts {counts_sql}").fetchone()[0]
            con.execute(f"CREATE OR REPLACE TABLE reference_cips AS {cips_sql}")
        elif con.execute("SELECT count(*) FROM touched_references").fetchone()[0] == 0:
            mode, written = "unchanged", 0
        else:
            mode = "incremental"
            set_variables(con, {"touched_only": True})
            con.execute(f"CREATE OR REPLACE TEMP TABLE reference_counts_fresh AS {counts_sql}")
            con.execute(f"DELETE FROM reference_counts AS r {touched}")
            written = con.execute("INSERT INTO reference_counts SELECT * FROM reference_counts_fresh").fetchone()[0]
            con.execute("DROP TABLE reference_counts_fresh")
            con.execute(f"DELETE FROM reference_cips AS r {touched}")
            con.execute(f"INSERT INTO reference_cips BY NAME {cips_sql}")
        con.execute("DELETE FROM touched_references")
        con.execute("DELETE FROM current_state_marks WHERE model = 'reference_counts'")
        con.execute("INSERT INTO current_state_marks VALUES ('reference_counts', ?, 0, 0)", [fingerprint])
        return mode, written

    try:
        mode, written = atomically(con, recount)
    finally:
        con.execute("RESET VARIABLE touched_only")
    rows = con.execute("SELECT count(*) FROM reference_counts").fetchone()[0]
    return Refresh(mode, int(rows), int(written))


def reference_count_drift(con: duckdb.DuckDBPyConnection, orders_scope: str, payments_scope: str, limit: int = 20) -> list[tuple]:
    """Stored counts and CIPs that differ from a recount, by the models themselves, of the
    references of the PagoEfectivo orders and CIPs the two predicates keep. Empty when they agree.
    A scope holding more than a fifth of the orders is checked whole: at 10M orders a full recount
    takes 2.5 s, a partial one of every reference 7.5 s. A partial recount borrows
    `touched_references` in a transaction that is always rolled back."""
    inside, total = con.execute(
        f"SELECT count(*) FILTER (WHERE {orders_scope}), count(*) FROM orders WHERE is_pagoefectivo"
    ).fetchone()
    everything = inside > total * 0.2
    con.execute("BEGIN")
    try:
        in_scope = ""
        if not everything:
            con.execute("DELETE FROM touched_references")
            con.execute(
                f"""INSERT INTO touched_references
                    SELECT store_id, reference FROM orders WHERE is_pagoefectivo AND {orders_scope}
                    UNION SELECT store_id, reference FROM payments WHERE {payments_scope}"""
            )
            set_variables(con, {"touched_only": True})
            in_scope = "SEMI JOIN touched_references AS t ON t.store_id = s.store_id AND t.reference IS NOT DISTINCT FROM s.reference"
        con.execute(f"CREATE TEMP TABLE recounted AS {model_sql('reference_counts')}")
        con.execute(f"CREATE TEMP TABLE stored AS SELECT s.* FROM reference_counts AS s {in_scope}")
        con.execute(f"CREATE TEMP TABLE cips_expected AS SELECT store_id, reference, cip, status FROM ({model_sql('reference_cips')})")
        con.execute(f"CREATE TEMP TABLE cips_stored AS SELECT s.store_id, s.reference, s.cip, s.status FROM reference_cips AS s {in_scope}")
        return con.execute(
            f"""SELECT 'recount only', store_id, reference, order_count || ' orders, ' || cip_count || ' CIPs' FROM (FROM recounted EXCEPT FROM stored)
                UNION ALL SELECT 'stored only', store_id, reference, order_count || ' orders, ' || cip_count || ' CIPs' FROM (FROM stored EXCEPT FROM recounted)
                UNION ALL SELECT 'CIP missing', store_id, reference, cip || ' ' || status FROM (FROM cips_expected EXCEPT FROM cips_stored)
                UNION ALL SELECT 'CIP extra', store_id, reference, cip || ' ' || status FROM (FROM cips_stored EXCEPT FROM cips_expected)
                ORDER BY ALL LIMIT {int(limit)}"""
        ).fetchall()
    finally:
        con.execute("ROLLBACK")
        con.execute("RESET VARIABLE touched_only")


def refresh_calendar(con: duckdb.DuckDBPyConnection, settings: Settings) -> int:
    """Rebuild `business_calendar` around every order and payment date; returns its days."""
    lo, hi = con.execute(
        """SELECT min(d), max(d) FROM (
               SELECT min(business_date) AS d FROM order_rows UNION ALL SELECT max(business_date) FROM order_rows
               UNION ALL SELECT min(payment_date) FROM statement_rows UNION ALL SELECT max(payment_date) FROM statement_rows
               UNION ALL SELECT max(creation_date) FROM statement_rows)"""
    ).fetchone()
    first = min(d for d in (lo, settings.start_date) if d is not None) - dt.timedelta(days=31)
    last = max(d for d in (hi, settings.start_date) if d is not None) + dt.timedelta(days=400)
    frame = business_calendar(first, last, settings.extra_non_working_days)

    def rebuild(con: duckdb.DuckDBPyConnection, days=frame) -> None:   # `days`: read by DuckDB, by its name
        con.execute("DELETE FROM business_calendar")
        con.execute("INSERT INTO business_calendar SELECT day, is_business_day, business_day_seq FROM days")

    atomically(con, rebuild)
    return len(frame)


# The model holds every CIP of the window's stores (a payment may settle an order of any day) and
# the window's orders. While the warehouse holds at most this many orders and CIPs in all, a
# window is reconciled in one statement: each statement costs about 0.3 s of planning and
# committing whatever its rows, which store by store was most of a daily run of many small stores.
# Beyond, store by store, so that one store's rows are in memory at a time (4 stores of 10M CIPs,
# one day: 2.4 GiB in one statement, 0.9 GiB store by store). Counting the whole tables reads no
# rows (file metadata), so a big warehouse's daily run pays nothing for the question.
ONE_STATEMENT_ROWS = 1_000_000


def reconcile(con: duckdb.DuckDBPyConnection, settings: Settings, window: Window, run_id: str | None = None) -> int:
    """Write the window's items to `recon_item_rows`; `recon_items` is the view that reads them.
    The commit is labelled with the window, so that what each rerun changed can be shown (diff.py)."""
    variables = window.variables(settings)
    parts = []
    if len(window.stores) > 1 and _orders_and_cips(con) > ONE_STATEMENT_ROWS:
        parts = [Window((store,), window.start, window.end).variables(settings) for store in window.stores]
    inserted = replace_window(con, "recon_item_rows", window.predicate, variables, parts=parts,
                              note=commit_note(window.stores, window.start, window.end, run_id))
    atomically(con, lambda con: build_view(con, "recon_items"))  # every run replaces it: runs at once conflict here
    return inserted


def _orders_and_cips(con: duckdb.DuckDBPyConnection) -> int:
    """Every order and CIP of the current state (0 before the first refresh made the tables)."""
    if table_type(con, "orders") is None or table_type(con, "payments") is None:
        return 0
    return int(con.execute("SELECT (SELECT count(*) FROM orders) + (SELECT count(*) FROM payments)").fetchone()[0])


def summarize(con: duckdb.DuckDBPyConnection, settings: Settings, window: Window) -> int:
    return replace_window(con, "recon_daily_summary", window.predicate, window.variables(settings))


def window_of(partition_keys: Sequence[tuple[str, dt.date]]) -> Window:
    stores = tuple(sorted({s for s, _ in partition_keys}))
    dates = [d for _, d in partition_keys]
    return Window(stores, min(dates), max(dates))
