-- NOTIFICATION_MISMATCH, on the Lima day a CIP was paid:
-- (a) a CIP notified as paid (statement_rows.origin = 'notification') that no statement row
--     (CSV or /v1/cips/search) shows paid or reversed, once the store's statements cover the
--     cutoff: the N-th business day after the payment day (alerts.statement_cutoff_business_days);
-- (b) a CIP the statements show paid that was never notified, for a store that receives
--     notifications, on or after the day of its first notification.
-- Variables: stores, start_date, end_date, statement_cutoff_business_days.
WITH
params AS (
    SELECT
        CAST(getvariable('statement_cutoff_business_days') AS INTEGER) AS cutoff
),
statement AS (
    SELECT * FROM statement_rows WHERE origin <> 'notification'
),
coverage AS (
    SELECT store_id, max(greatest(coalesce(payment_date, creation_date), coalesce(creation_date, payment_date))) AS coverage_date
    FROM statement GROUP BY store_id
),
notified AS (
    SELECT store_id, cip, min(payment_date) AS payment_date
    FROM statement_rows WHERE origin = 'notification' AND status = 'paid' AND payment_date IS NOT NULL
    GROUP BY store_id, cip
),
first_notification AS (
    SELECT store_id, min(coalesce(payment_date, creation_date)) AS first_day
    FROM statement_rows WHERE origin = 'notification' GROUP BY store_id
),
not_in_statement AS (
    SELECT n.store_id, n.payment_date AS day, n.cip, 'notified paid, not paid in the statements' AS what
    FROM notified AS n
    CROSS JOIN params
    JOIN business_calendar AS paid_day ON paid_day.day = n.payment_date
    JOIN business_calendar AS cutoff
        ON cutoff.is_business_day AND cutoff.business_day_seq = paid_day.business_day_seq + params.cutoff
    JOIN coverage AS c ON c.store_id = n.store_id AND c.coverage_date >= cutoff.day
    WHERE NOT EXISTS (
        SELECT 1 FROM statement AS s
        WHERE s.store_id = n.store_id AND s.cip = n.cip AND s.status IN ('paid', 'reversed')
    )
),
never_notified AS (
    SELECT s.store_id, min(s.payment_date) AS day, s.cip, 'paid in the statements, never notified' AS what
    FROM statement AS s
    JOIN first_notification AS f ON f.store_id = s.store_id
    WHERE s.status = 'paid' AND s.payment_date >= f.first_day
      AND NOT EXISTS (
          SELECT 1 FROM statement_rows AS n WHERE n.origin = 'notification' AND n.store_id = s.store_id AND n.cip = s.cip
      )
    GROUP BY s.store_id, s.cip
),
mismatches AS (
    SELECT * FROM not_in_statement UNION ALL SELECT * FROM never_notified
)
SELECT
    'NOTIFICATION_MISMATCH' AS kind,
    m.store_id,
    m.day AS business_date,
    'warning' AS severity,
    CAST(count(*) AS VARCHAR) || ' CIPs' AS value,
    'statements cover ' || CAST(params.cutoff AS VARCHAR) || ' business day(s) after payment' AS threshold,
    CAST(count(*) AS VARCHAR) || ' CIP(s) paid on ' || CAST(m.day AS VARCHAR)
        || ' where notifications and statements disagree: '
        || array_to_string(list_slice(list('CIP ' || m.cip || ' ' || m.what ORDER BY m.cip), 1, 10), '; ')
        || CASE WHEN count(*) > 10 THEN '; and ' || CAST(count(*) - 10 AS VARCHAR) || ' more' ELSE '' END || '.' AS message
FROM mismatches AS m, params
WHERE in_window(m.store_id, m.day)
GROUP BY m.store_id, m.day, params.cutoff
