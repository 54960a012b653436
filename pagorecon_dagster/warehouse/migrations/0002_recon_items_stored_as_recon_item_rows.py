"""Before `recon_item_rows`, `recon_items` was a table with every sentence stored: its rows move
over as they are (their evidence kept word for word), so no reconciled day is lost, and
`recon_items` becomes the view over them."""

import duckdb

from pagorecon_dagster.warehouse.duckdb import build_view, table_type


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    if table_type(con, "recon_items") != "BASE TABLE":
        return
    con.execute(
        "INSERT INTO recon_item_rows BY NAME SELECT * EXCLUDE (evidence), "
        "CAST(NULL AS TIMESTAMPTZ) AS paid_at, evidence AS evidence_detail FROM recon_items"
    )
    con.execute("DROP TABLE recon_items")
    build_view(con, "recon_items")
