"""Before `paid_currency` was part of its grain, the daily summary added an FX item's payment into
the order's currency: the store-days it held are summed again, at the new grain, from their items."""

import duckdb

from pagorecon_dagster.warehouse.duckdb import model_sql, set_variables, table_type


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    if table_type(con, "recon_daily_summary") != "BASE TABLE" or con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'recon_daily_summary' AND column_name = 'paid_currency' "
        "AND table_catalog = current_database()"
    ).fetchone()[0]:
        return
    stores, start, end = con.execute(
        "SELECT list(DISTINCT store_id ORDER BY store_id), min(business_date), max(business_date) FROM recon_daily_summary"
    ).fetchone()
    if stores:  # the model reads the window it is given: the summarized stores and dates
        set_variables(con, {"stores": stores, "start_date": start, "end_date": end})
    con.execute(
        f"CREATE TABLE recon_daily_summary_regrouped AS SELECT * FROM ({model_sql('recon_daily_summary')}) "
        "WHERE (store_id, business_date) IN (SELECT (store_id, business_date) FROM recon_daily_summary)"
        + ("" if stores else " AND false")
    )
    con.execute("DROP TABLE recon_daily_summary")
    con.execute("ALTER TABLE recon_daily_summary_regrouped RENAME TO recon_daily_summary")
