"""Every row read is loaded or quarantined, for every file of every landing folder."""


import dagster as dg

from pagorecon_dagster.ingestion.assets import RAW_ASSETS
from pagorecon_dagster.resources import PagoreconHome

# Loaded rows per file, counted in the table they went to (Shopify: one order carries its line items).
LOADED_ROWS_SQL = {
    "statement_rows": "count(*)",
    "order_rows": "sum(line_items)",
    "fx_rate_rows": "count(*)",
    "refund_request_rows": "count(*)",
}


def rows_accounted_for_check(kind: str) -> dg.AssetChecksDefinition:
    table, _ = RAW_ASSETS[kind]

    @dg.asset_check(asset=table, name="rows_accounted_for", description="rows_read = rows_loaded + rows_quarantined, and the tables hold exactly those rows")
    def _check(pagorecon: PagoreconHome) -> dg.AssetCheckResult:
        with pagorecon.warehouse() as con:
            bad = con.execute(
                f"""
                WITH loaded AS (SELECT file_seq, {LOADED_ROWS_SQL[table]} AS n FROM {table} GROUP BY file_seq),
                     quarantined AS (SELECT file_seq, count(*) AS n FROM quarantine GROUP BY file_seq)
                SELECT f.file, f.rows_read, f.rows_loaded, f.rows_quarantined,
                       coalesce(l.n, 0) AS in_table, coalesce(q.n, 0) AS in_quarantine
                FROM ingested_files AS f
                LEFT JOIN loaded AS l USING (file_seq)
                LEFT JOIN quarantined AS q USING (file_seq)
                WHERE f.source = ? AND f.status = 'loaded'
                  AND (f.rows_read <> f.rows_loaded + f.rows_quarantined
                       OR coalesce(l.n, 0) <> f.rows_loaded OR coalesce(q.n, 0) <> f.rows_quarantined)
                ORDER BY f.file
                """,
                [kind],
            ).fetchall()
            files = con.execute("SELECT count(*) FROM ingested_files WHERE source = ? AND status = 'loaded'", [kind]).fetchone()[0]
        return dg.AssetCheckResult(
            passed=not bad,
            metadata={
                "files_checked": dg.MetadataValue.int(files),
                "files_not_accounted_for": dg.MetadataValue.json([list(map(str, row)) for row in bad[:20]]),
            },
        )

    return _check


def files_readable_check(kind: str) -> dg.AssetChecksDefinition:
    table, _ = RAW_ASSETS[kind]

    @dg.asset_check(asset=table, name="files_readable", description="No landing file failed to read (they are listed with their error)")
    def _check(pagorecon: PagoreconHome) -> dg.AssetCheckResult:
        with pagorecon.warehouse() as con:
            failed = con.execute(
                "SELECT file, error FROM ingested_files WHERE source = ? AND status = 'failed' ORDER BY file", [kind]
            ).fetchall()
        return dg.AssetCheckResult(
            passed=not failed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"failed_files": dg.MetadataValue.json([{"file": f, "error": e} for f, e in failed])},
        )

    return _check


ingestion_checks = [make(kind) for kind in RAW_ASSETS for make in (rows_accounted_for_check, files_readable_check)]
