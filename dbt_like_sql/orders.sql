-- The latest version of each order: later files supersede earlier ones, and within a file the
-- last row wins (CONTRACT §2).
SELECT * EXCLUDE (version)
FROM (
    SELECT r.*, row_number() OVER (PARTITION BY store_id, order_id ORDER BY file_seq DESC, line DESC) AS version
    FROM order_rows AS r
)
WHERE version = 1
ORDER BY store_id, business_date, order_id
