-- The latest state of each CIP (later file wins; last row within a file wins). A notification
-- delivered again (same operationNumber) is the same notification: only its first delivery counts,
-- so a late retry of an old event cannot undo a newer state.
WITH deliveries AS (
    SELECT *,
        CASE WHEN origin = 'notification' AND operation_number IS NOT NULL
             THEN row_number() OVER (PARTITION BY store_id, origin, operation_number ORDER BY file_seq, line)
             ELSE 1 END AS delivery
    FROM statement_rows
)
SELECT * EXCLUDE (delivery, version)
FROM (
    SELECT d.*, row_number() OVER (PARTITION BY store_id, cip ORDER BY file_seq DESC, line DESC) AS version
    FROM deliveries AS d
    WHERE delivery = 1
)
WHERE version = 1
ORDER BY store_id, cip
