"""Invariants of the reconciliation, over everything reconciled so far."""


import dagster as dg

from pagorecon_dagster.resources import PagoreconHome
from pagorecon_dagster.warehouse.duckdb import table_type

SECONDARY = "('DUPLICATE_PAYMENT', 'ORPHAN_PAYMENT')"


@dg.asset_check(asset="recon_items", description="Every PagoEfectivo order of a reconciled store-day appears exactly once as a primary item")
def each_order_once(pagorecon: PagoreconHome) -> dg.AssetCheckResult:
    with pagorecon.warehouse() as con:
        if not _exists(con, "recon_items"):
            return dg.AssetCheckResult(passed=True, metadata={"note": "nothing reconciled yet"})
        twice = con.execute(
            f"""SELECT store_id, order_id, count(*) FROM recon_items WHERE status NOT IN {SECONDARY}
                GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL LIMIT 20"""
        ).fetchall()
        missing = con.execute(
            f"""SELECT o.store_id, o.order_id, o.business_date FROM orders AS o
                WHERE o.is_pagoefectivo
                  AND EXISTS (SELECT 1 FROM recon_items AS d WHERE d.store_id = o.store_id AND d.business_date = o.business_date)
                  AND NOT EXISTS (SELECT 1 FROM recon_items AS r WHERE r.store_id = o.store_id AND r.order_id = o.order_id
                                  AND r.status NOT IN {SECONDARY})
                ORDER BY ALL LIMIT 20"""
        ).fetchall()
    return dg.AssetCheckResult(
        passed=not twice and not missing,
        metadata={
            "orders_more_than_once": dg.MetadataValue.json([list(map(str, r)) for r in twice]),
            "orders_missing": dg.MetadataValue.json([list(map(str, r)) for r in missing]),
        },
    )


@dg.asset_check(asset="recon_daily_summary", description="Summary items and céntimos equal the sums over recon_items")
def summary_matches_items(pagorecon: PagoreconHome) -> dg.AssetCheckResult:
    with pagorecon.warehouse() as con:
        if not _exists(con, "recon_daily_summary"):
            return dg.AssetCheckResult(passed=True, metadata={"note": "nothing summarized yet"})
        diff = con.execute(
            """
            WITH items AS (
                SELECT store_id, business_date, coalesce(order_currency, paid_currency) AS currency, status,
                       count(*) AS items, coalesce(sum(order_total_cents), 0) AS order_total_cents,
                       coalesce(sum(paid_amount_cents), 0) AS paid_amount_cents,
                       coalesce(sum(refunded_cents), 0) AS refunded_cents
                FROM recon_items
                WHERE (store_id, business_date) IN (SELECT (store_id, business_date) FROM recon_daily_summary)
                GROUP BY ALL
            )
            SELECT * FROM (SELECT * FROM items EXCEPT SELECT store_id, business_date, currency, status, items, order_total_cents, paid_amount_cents, refunded_cents FROM recon_daily_summary)
            UNION ALL
            SELECT * FROM (SELECT store_id, business_date, currency, status, items, order_total_cents, paid_amount_cents, refunded_cents FROM recon_daily_summary EXCEPT SELECT * FROM items)
            LIMIT 20
            """
        ).fetchall()
    return dg.AssetCheckResult(passed=not diff, metadata={"differences": dg.MetadataValue.json([list(map(str, r)) for r in diff])})


def _exists(con, table: str) -> bool:
    return table_type(con, table) is not None


reconciliation_checks = [each_order_once, summary_matches_items]
