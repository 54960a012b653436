-- The latest state of each CIP (later file wins; last row within a file wins). A notification
-- delivered again (same operationNumber) is the same notification: only its first delivery counts,
-- so a late retry of an old event cannot undo a newer state. Only notifications are ranked for
-- that; ranking every row is much slower (benchmarks/README.md, Figures behind the SQL).
--
-- Incremental like orders.sql: with `after_file_seq` set, only rows of later files are read, and a
-- notification already delivered by an earlier file is a redelivery. With `only_store` set, only that
-- store's rows, like orders.sql.
WITH fresh AS NOT MATERIALIZED (
    SELECT * FROM statement_rows
    WHERE file_seq > coalesce(getvariable('after_file_seq'), 0)
      AND (getvariable('only_store') IS NULL OR store_id = getvariable('only_store'))
),
deliveries AS (
    SELECT * FROM fresh
    WHERE origin <> 'notification' OR operation_number IS NULL
    UNION ALL
    SELECT * FROM fresh AS n
    WHERE origin = 'notification' AND operation_number IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM statement_rows AS earlier
          WHERE earlier.file_seq <= coalesce(getvariable('after_file_seq'), 0)
            AND earlier.origin = 'notification'
            AND earlier.store_id = n.store_id AND earlier.operation_number = n.operation_number
      )
    QUALIFY row_number() OVER (PARTITION BY store_id, operation_number ORDER BY file_seq, line) = 1
)
SELECT *
FROM deliveries
QUALIFY row_number() OVER (PARTITION BY store_id, cip ORDER BY file_seq DESC, line DESC) = 1
ORDER BY store_id, cip
