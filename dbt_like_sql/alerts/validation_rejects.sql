-- VALIDATION_REJECTS: rejected rows (table quarantine) and unreadable files among the landing files
-- that touch the store and day. A file touches the days of the rows it loaded (an order's Lima
-- date, a CIP's payment and creation dates, a refund request's date); a file that loaded no row,
-- and every exchange-rate file (no store: store_id NULL), touches the Lima day it was ingested.
-- Variables: stores, start_date, end_date.
WITH
params AS (
    SELECT
        CAST(getvariable('stores') AS VARCHAR[]) AS stores,
        CAST(getvariable('start_date') AS DATE) AS start_date,
        CAST(getvariable('end_date') AS DATE) AS end_date
),
file_days AS (
    SELECT DISTINCT file_seq, business_date AS day FROM order_rows
    UNION SELECT DISTINCT file_seq, payment_date FROM statement_rows WHERE payment_date IS NOT NULL
    UNION SELECT DISTINCT file_seq, creation_date FROM statement_rows WHERE creation_date IS NOT NULL
    UNION SELECT DISTINCT file_seq, CAST(timezone('America/Lima', requested_at) AS DATE) FROM refund_request_rows
),
bad_files AS (
    SELECT f.*, CAST(timezone('America/Lima', f.ingested_at) AS DATE) AS ingested_day
    FROM ingested_files AS f
    WHERE (f.status = 'loaded' AND f.rows_quarantined > 0) OR f.status = 'failed'
),
touches AS (
    SELECT b.store_id, coalesce(d.day, b.ingested_day) AS day, b.file, b.status, b.rows_quarantined, b.error
    FROM bad_files AS b
    LEFT JOIN file_days AS d ON d.file_seq = b.file_seq AND b.store_id IS NOT NULL
)
SELECT
    'VALIDATION_REJECTS' AS kind,
    t.store_id,
    t.day AS business_date,
    'warning' AS severity,
    CAST(sum(t.rows_quarantined) AS VARCHAR) || ' rows, ' || CAST(count(*) FILTER (WHERE t.status = 'failed') AS VARCHAR)
        || ' unreadable files' AS value,
    '0' AS threshold,
    CAST(sum(t.rows_quarantined) AS VARCHAR) || ' rejected row(s) and '
        || CAST(count(*) FILTER (WHERE t.status = 'failed') AS VARCHAR) || ' unreadable file(s) in landing files touching '
        || CAST(t.day AS VARCHAR) || ': '
        || array_to_string(list_slice(list('landing/' || t.file || CASE WHEN t.status = 'failed' THEN ' unreadable (' || t.error || ')' ELSE ' ' || CAST(t.rows_quarantined AS VARCHAR) || ' rejected' END ORDER BY t.file), 1, 10), '; ')
        || CASE WHEN count(*) > 10 THEN '; and ' || CAST(count(*) - 10 AS VARCHAR) || ' more' ELSE '' END
        || '. Rows are in table quarantine.' AS message
FROM touches AS t, params
WHERE (t.store_id IS NULL OR list_contains(params.stores, t.store_id))
  AND t.day BETWEEN params.start_date AND params.end_date
GROUP BY t.store_id, t.day
