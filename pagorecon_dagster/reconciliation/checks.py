"""Invariants of the reconciliation. In a run they hold over the run's window (the store-days it
reconciled): a day reconciled earlier is not re-judged against orders that arrived since, until
it is rerun, and a daily run does not pay for reading the whole history. Run alone (from the UI,
with no partitions), they hold over everything reconciled so far."""


import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.partitions import parse_keys, store_day_partitions
from pagorecon_dagster.reconciliation.models import Window, reference_count_drift
from pagorecon_dagster.resources import PagoreconHome
from pagorecon_dagster.warehouse.duckdb import set_variables, table_type

# A paid CIP's extra row, not an order's own (status_catalog, seeded from reconciliation/catalog.py).
SECONDARY = "(SELECT status FROM status_catalog WHERE NOT primary_item)"
RANGE_START, RANGE_END, PARTITION = (
    "dagster/asset_partition_range_start", "dagster/asset_partition_range_end", "dagster/partition",
)


def run_window(tags: dict[str, str], settings: Settings) -> Window | None:
    """The store x date rectangle of a run, from its partition tags; None for a run without them."""
    partitions_def = store_day_partitions(settings)
    if RANGE_START in tags and RANGE_END in tags:
        (first_store, start), (last_store, end) = parse_keys(partitions_def, [tags[RANGE_START], tags[RANGE_END]])
        ids = settings.store_ids
        return Window(tuple(ids[ids.index(first_store): ids.index(last_store) + 1]), start, end)
    if PARTITION in tags:
        ((store, day),) = parse_keys(partitions_def, [tags[PARTITION]])
        return Window((store,), day, day)
    return None


def _scope(context: dg.AssetCheckExecutionContext, pagorecon: PagoreconHome, con, day: str = "business_date") -> tuple[str, dict]:
    """SQL that keeps a row whose store and `day` fall in the run's window (TRUE when the check
    runs alone), and where it looked."""
    settings = pagorecon.settings()
    window = run_window(dict(context.op_execution_context.run_tags), settings)
    if window is None:
        return "TRUE", {"scope": dg.MetadataValue.text("everything reconciled so far")}
    set_variables(con, window.variables(settings))
    scope = f"{', '.join(window.stores)} {window.start}..{window.end}"
    return f"in_window(store_id, {day})", {"scope": dg.MetadataValue.text(scope)}


@dg.asset_check(asset="recon_items", description="Every PagoEfectivo order of a reconciled store-day appears exactly once as a primary item")
def each_order_once(context: dg.AssetCheckExecutionContext, pagorecon: PagoreconHome) -> dg.AssetCheckResult:
    with pagorecon.warehouse() as con:
        if not _exists(con, "recon_items"):
            return dg.AssetCheckResult(passed=True, metadata={"note": "nothing reconciled yet"})
        in_scope, where = _scope(context, pagorecon, con)
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
    return dg.AssetCheckResult(
        passed=not twice and not missing,
        metadata={
            **where,
            "orders_more_than_once": dg.MetadataValue.json([list(map(str, r)) for r in twice]),
            "orders_missing": dg.MetadataValue.json([list(map(str, r)) for r in missing]),
        },
    )


@dg.asset_check(asset="recon_daily_summary", description="Summary items and céntimos equal the sums over recon_items")
def summary_matches_items(context: dg.AssetCheckExecutionContext, pagorecon: PagoreconHome) -> dg.AssetCheckResult:
    with pagorecon.warehouse() as con:
        if not _exists(con, "recon_daily_summary"):
            return dg.AssetCheckResult(passed=True, metadata={"note": "nothing summarized yet"})
        in_scope, where = _scope(context, pagorecon, con)
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
    return dg.AssetCheckResult(
        passed=not diff, metadata={**where, "differences": dg.MetadataValue.json([list(map(str, r)) for r in diff])}
    )


@dg.asset_check(asset="recon_items", description="Every item's status and reason are in the status catalog (reconciliation/catalog.py)")
def statuses_in_catalog(context: dg.AssetCheckExecutionContext, pagorecon: PagoreconHome) -> dg.AssetCheckResult:
    with pagorecon.warehouse() as con:
        if not _exists(con, "recon_items"):
            return dg.AssetCheckResult(passed=True, metadata={"note": "nothing reconciled yet"})
        in_scope, where = _scope(context, pagorecon, con)
        unknown = con.execute(
            f"""SELECT status, reason, count(*) FROM recon_items AS i WHERE {in_scope}
                  AND NOT EXISTS (SELECT 1 FROM status_catalog AS k WHERE k.status = i.status AND k.reason IS NOT DISTINCT FROM i.reason)
                GROUP BY ALL ORDER BY ALL LIMIT 20"""
        ).fetchall()
    return dg.AssetCheckResult(
        passed=not unknown, metadata={**where, "not_in_catalog": dg.MetadataValue.json([list(map(str, r)) for r in unknown])}
    )


@dg.asset_check(
    asset="reference_counts",
    description="The stored reference counts and their CIPs equal a recount of the references of the run's orders and payments",
)
def counts_match_a_recount(context: dg.AssetCheckExecutionContext, pagorecon: PagoreconHome) -> dg.AssetCheckResult:
    with pagorecon.warehouse() as con:
        if not _exists(con, "reference_cips"):
            return dg.AssetCheckResult(passed=True, metadata={"note": "nothing counted yet"})
        orders_scope, where = _scope(context, pagorecon, con)
        payments_scope, _ = _scope(context, pagorecon, con, day="payment_date")
        drift = reference_count_drift(con, orders_scope, payments_scope)
    return dg.AssetCheckResult(
        passed=not drift,
        metadata={
            **where,
            "differences": dg.MetadataValue.json([list(map(str, row)) for row in drift]),
            "fix": "DELETE FROM current_state_marks WHERE model = 'reference_counts', then materialize reference_counts",
        },
    )


def _exists(con, table: str) -> bool:
    return table_type(con, table) is not None


reconciliation_checks = [each_order_once, summary_matches_items, statuses_in_catalog, counts_match_a_recount]
