-- The latest state of each CIP (later file wins; last row within a file wins). A notification
-- delivered again (same operationNumber) is the same notification: only its first delivery counts,
-- so a late retry of an old event cannot undo a newer state. Only notifications are ranked for
-- that; ranking every row cost a third of this model's time.
WITH deliveries AS (
    SELECT * FROM statement_rows
    WHERE origin <> 'notification' OR operation_number IS NULL
    UNION ALL
    SELECT * FROM statement_rows
    WHERE origin = 'notification' AND operation_number IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY store_id, operation_number ORDER BY file_seq, line) = 1
)
SELECT *
FROM deliveries
QUALIFY row_number() OVER (PARTITION BY store_id, cip ORDER BY file_seq DESC, line DESC) = 1
ORDER BY store_id, cip
