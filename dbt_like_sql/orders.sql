-- The latest version of each order: later files supersede earlier ones, and within a file the
-- last row wins (docs/landing-formats.md). Stored in store and Lima-date order: reconciling reads orders by
-- store and day, and joins them faster in that order (benchmarks/README.md, Figures behind the SQL).
--
-- Incremental: with the variable `after_file_seq` set, only rows of later files are read, and the
-- result replaces those orders' rows in the table (reconciliation/models.py, refresh_model). Every
-- later file supersedes every earlier one, so the latest version among the new rows is the latest
-- of all. Unset (or 0), this is the whole table.
--
-- With the variable `only_store` set, only that store's rows: a rebuild goes store by store, so its
-- memory is one store's (refresh_latest in warehouse/duckdb.py).
SELECT *
FROM order_rows
WHERE file_seq > coalesce(getvariable('after_file_seq'), 0)
  AND (getvariable('only_store') IS NULL OR store_id = getvariable('only_store'))
QUALIFY row_number() OVER (PARTITION BY store_id, order_id ORDER BY file_seq DESC, line DESC) = 1
ORDER BY store_id, business_date, order_id
