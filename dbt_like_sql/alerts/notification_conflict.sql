-- NOTIFICATION_CONFLICT: PagoEfectivo notified one operationNumber with different contents (CIP,
-- status, currency, amount, payment time or reference), e.g. the webhook kept a second, different
-- body beside the first (`<operationNumber>~conflict-<sha8>.json`). Only the first delivery counts
-- as the payment (payments.sql); a person must check the others. On the Lima day of the earliest
-- notified payment or creation, else the day the first file was ingested.
-- Variables: stores, start_date, end_date.
WITH
notified AS (
    SELECT s.store_id, s.operation_number, s.cip, s.status, s.currency, s.amount_cents, s.date_payment,
           s.transaction_code, s.file,
           coalesce(s.payment_date, s.creation_date, CAST(timezone('America/Lima', f.ingested_at) AS DATE)) AS day
    FROM statement_rows AS s
    JOIN ingested_files AS f USING (file_seq)
    WHERE s.origin = 'notification' AND s.operation_number IS NOT NULL
),
conflicts AS (
    SELECT store_id, operation_number, min(day) AS day,
           array_to_string(list(DISTINCT cip ORDER BY cip), ', ') AS cips,
           array_to_string(list(DISTINCT 'landing/' || file ORDER BY 'landing/' || file), ', ') AS files
    FROM notified
    GROUP BY store_id, operation_number
    HAVING count(DISTINCT (cip, status, currency, amount_cents, date_payment, transaction_code)) > 1
)
SELECT
    'NOTIFICATION_CONFLICT' AS kind,
    c.store_id,
    c.day AS business_date,
    'critical' AS severity,
    CAST(count(*) AS VARCHAR) || ' operationNumbers' AS value,
    '0' AS threshold,
    CAST(count(*) AS VARCHAR) || ' operationNumber(s) notified on ' || CAST(c.day AS VARCHAR)
        || ' with different contents: '
        || array_to_string(list_slice(list('operationNumber ' || c.operation_number || ' (CIP ' || c.cips || ') in ' || c.files
                                           ORDER BY c.operation_number), 1, 10), '; ')
        || CASE WHEN count(*) > 10 THEN '; and ' || CAST(count(*) - 10 AS VARCHAR) || ' more' ELSE '' END
        || '. The first delivery counts; check the others with PagoEfectivo.' AS message
FROM conflicts AS c
WHERE in_window(c.store_id, c.day)
GROUP BY c.store_id, c.day
