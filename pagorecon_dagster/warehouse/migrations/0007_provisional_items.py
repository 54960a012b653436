"""Items carry `provisional`: their day's statements are not final yet (dbt_like_sql/recon_item_rows.sql).
Rows written before it get the value their day has now, from how far each store's statements reach."""

import duckdb

from pagorecon_dagster.warehouse.duckdb import table_type


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    if table_type(con, "recon_item_rows") != "BASE TABLE":
        return
    con.execute("ALTER TABLE recon_item_rows ADD COLUMN IF NOT EXISTS provisional BOOLEAN")
    if table_type(con, "statement_coverage") is None:
        con.execute("UPDATE recon_item_rows SET provisional = TRUE WHERE provisional IS NULL")
        return
    con.execute(
        """UPDATE recon_item_rows AS r
           SET provisional = coalesce(r.business_date >= (SELECT c.coverage_date FROM statement_coverage AS c
                                                          WHERE c.store_id = r.store_id), TRUE)
           WHERE r.provisional IS NULL"""
    )
