"""Invariants of the reconciliation, declared on the asset they guard (`check_specs`) and evaluated
in its body, right after it writes. In a run they hold over the run's window (the store-days it
reconciled): a day reconciled earlier is not re-judged against orders that arrived since, until it
is rerun, and a daily run does not pay for reading the whole history. Called with no window (an
unpartitioned materialization, or by hand), they hold over everything reconciled so far."""

from collections.abc import Callable, Iterator

import dagster as dg
import duckdb

from pagorecon_dagster.config import Settings
from pagorecon_dagster.partitions import parse_keys, store_day_partitions
from pagorecon_dagster.reconciliation.models import Window, reference_count_drift, window_of
from pagorecon_dagster.warehouse.duckdb import set_variables, table_type

# A paid CIP's extra row, not an order's own (status_catalog, seeded from reconciliation/catalog.py).
SECONDARY = "(SELECT status FROM status_catalog WHERE NOT primary_item)"
Check = Callable[[duckdb.DuckDBPyConnection, Settings, "Window | None"], dg.AssetCheckResult]


def window_of_run(context: dg.AssetExecutionContext, settings: Settings) -> Window | None:
    """The store x date rectangle the run materializes (an unpartitioned asset in a partitioned run
    sees the run's partitions too); None for a run without partitions."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    return window_of(parse_keys(store_day_partitions(settings), context.partition_keys))


def _scope(con: duckdb.DuckDBPyConnection, settings: Settings, window: Window | None, day: str = "business_date") -> tuple[str, dict]:
    """SQL that keeps a row whose store and `day` fall in the window (TRUE with no window), and
    where it looked."""
    if window is None:
        return "TRUE", {"scope": dg.MetadataValue.text("everything reconciled so far")}
    set_variables(con, window.variables(settings))
    scope = f"{', '.join(window.stores)} {window.start}..{window.end}"
    return f"in_window(store_id, {day})", {"scope": dg.MetadataValue.text(scope)}


def _result(asset: str, check: Check, passed: bool, metadata: dict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(asset_key=asset, check_name=check.__name__, passed=passed, metadata=metadata)


def each_order_once(con: duckdb.DuckDBPyConnection, settings: Settings, window: Window | None = None) -> dg.AssetCheckResult:
    """Every PagoEfectivo order of a reconciled store-day appears exactly once as a primary item"""
    if not _exists(con, "recon_items"):
        return _result("recon_items", each_order_once, True, {"note": "nothing reconciled yet"})
    in_scope, where = _scope(con, settings, window)
    twice = con.execute(
        f"""SELECT store_id, order_id, count(*) FROM recon_items WHERE status NOT IN {SECONDARY} AND {in_scope}
            GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL LIMIT 20"""
    ).fetchall()
    missing = con.execute(
        f"""SELECT o.store_id, o.order_id, o.business_date FROM orders AS o
            WHERE o.is_pagoefectivo AND {in_scope}
              AND EXISTS (SELECT 1 FROM recon_items AS d WHERE d.store_id = o.store_id AND d.business_date = o.business_date
                          AND {in_scope})
              AND NOT EXISTS (SELECT 1 FROM recon_items AS r WHERE r.store_id = o.store_id AND r.order_id = o.order_id
                              AND r.status NOT IN {SECONDARY} AND {in_scope})
            ORDER BY ALL LIMIT 20"""
    ).fetchall()
    return _result(
        "recon_items", each_order_once, not twice and not missing,
        {
            **where,
            "orders_more_than_once": dg.MetadataValue.json([list(map(str, r)) for r in twice]),
            "orders_missing": dg.MetadataValue.json([list(map(str, r)) for r in missing]),
        },
    )


def summary_matches_items(con: duckdb.DuckDBPyConnection, settings: Settings, window: Window | None = None) -> dg.AssetCheckResult:
    """Summary items and céntimos equal the sums over recon_items"""
    if not _exists(con, "recon_daily_summary"):
        return _result("recon_daily_summary", summary_matches_items, True, {"note": "nothing summarized yet"})
    in_scope, where = _scope(con, settings, window)
    diff = con.execute(
        f"""
        WITH items AS (
            SELECT store_id, business_date, coalesce(order_currency, paid_currency) AS currency, paid_currency, status,
                   count(*) AS items, coalesce(sum(order_total_cents), 0) AS order_total_cents,
                   coalesce(sum(paid_amount_cents), 0) AS paid_amount_cents,
                   coalesce(sum(refunded_cents), 0) AS refunded_cents
            FROM recon_items
            WHERE (store_id, business_date) IN (SELECT (store_id, business_date) FROM recon_daily_summary) AND {in_scope}
            GROUP BY ALL
        ),
        summary AS (
            SELECT store_id, business_date, currency, paid_currency, status, items, order_total_cents, paid_amount_cents, refunded_cents
            FROM recon_daily_summary WHERE {in_scope}
        )
        SELECT * FROM (FROM items EXCEPT FROM summary)
        UNION ALL
        SELECT * FROM (FROM summary EXCEPT FROM items)
        LIMIT 20
        """
    ).fetchall()
    return _result(
        "recon_daily_summary", summary_matches_items, not diff,
        {**where, "differences": dg.MetadataValue.json([list(map(str, r)) for r in diff])},
    )


def statuses_in_catalog(con: duckdb.DuckDBPyConnection, settings: Settings, window: Window | None = None) -> dg.AssetCheckResult:
    """Every item's status and reason are in the status catalog (reconciliation/catalog.py)"""
    if not _exists(con, "recon_items"):
        return _result("recon_items", statuses_in_catalog, True, {"note": "nothing reconciled yet"})
    in_scope, where = _scope(con, settings, window)
    unknown = con.execute(
        f"""SELECT status, reason, count(*) FROM recon_items AS i WHERE {in_scope}
              AND NOT EXISTS (SELECT 1 FROM status_catalog AS k WHERE k.status = i.status AND k.reason IS NOT DISTINCT FROM i.reason)
            GROUP BY ALL ORDER BY ALL LIMIT 20"""
    ).fetchall()
    return _result("recon_items", statuses_in_catalog, not unknown,
                   {**where, "not_in_catalog": dg.MetadataValue.json([list(map(str, r)) for r in unknown])})


def counts_match_a_recount(con: duckdb.DuckDBPyConnection, settings: Settings, window: Window | None = None) -> dg.AssetCheckResult:
    """The stored reference counts and their CIPs equal a recount of the references of the run's orders and payments"""
    if not _exists(con, "reference_cips"):
        return _result("reference_counts", counts_match_a_recount, True, {"note": "nothing counted yet"})
    orders_scope, where = _scope(con, settings, window)
    payments_scope, _ = _scope(con, settings, window, day="payment_date")
    drift = reference_count_drift(con, orders_scope, payments_scope)
    return _result(
        "reference_counts", counts_match_a_recount, not drift,
        {
            **where,
            "differences": dg.MetadataValue.json([list(map(str, row)) for row in drift]),
            "fix": "DELETE FROM current_state_marks WHERE model = 'reference_counts', then materialize reference_counts",
        },
    )


def _exists(con, table: str) -> bool:
    return table_type(con, table) is not None


# The checks of each asset, in the order its body evaluates them.
CHECKS: dict[str, tuple[Check, ...]] = {
    "recon_items": (each_order_once, statuses_in_catalog),
    "recon_daily_summary": (summary_matches_items,),
    "reference_counts": (counts_match_a_recount,),
}


def check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    """What `asset` declares: one spec per check, its description the check's docstring."""
    return [dg.AssetCheckSpec(check.__name__, asset=asset, description=check.__doc__) for check in CHECKS[asset]]


def evaluate(asset: str, con: duckdb.DuckDBPyConnection, settings: Settings, window: Window | None) -> Iterator[dg.AssetCheckResult]:
    """The results of `asset`'s checks over `window`, for its body to yield."""
    for check in CHECKS[asset]:
        yield check(con, settings, window)
