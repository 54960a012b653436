-- REFUND_OVERDUE: refunds approved but not paid within N Peru business days
-- (alerts.refund_overdue_business_days, 3 by default). The deadline is the N-th business day after
-- the Lima day of approval; a refund paid after it, or not paid at all, is overdue from the day
-- after the deadline, and is reported on that day (one alert per store and day lists them all).
-- Variables: stores, start_date, end_date, refund_overdue_business_days.
WITH
params AS (
    SELECT
        CAST(getvariable('stores') AS VARCHAR[]) AS stores,
        CAST(getvariable('start_date') AS DATE) AS start_date,
        CAST(getvariable('end_date') AS DATE) AS end_date,
        CAST(getvariable('refund_overdue_business_days') AS INTEGER) AS days
),
approved AS (
    SELECT r.refund_id, r.store_id, r.order_id, r.cip, r.amount_cents, r.currency, r.status,
        CAST(timezone('America/Lima', r.approved_at) AS DATE) AS approved_day,
        CAST(timezone('America/Lima', r.completed_at) AS DATE) AS completed_day
    FROM refunds AS r, params
    WHERE list_contains(params.stores, r.store_id) AND r.approved_at IS NOT NULL AND r.status <> 'rejected'
),
due AS (
    SELECT a.*, deadline.day AS deadline
    FROM approved AS a
    CROSS JOIN params
    JOIN business_calendar AS approval ON approval.day = a.approved_day
    JOIN business_calendar AS deadline
        ON deadline.is_business_day AND deadline.business_day_seq = approval.business_day_seq + params.days
),
overdue AS (
    SELECT *, CAST(deadline + INTERVAL 1 DAY AS DATE) AS overdue_day
    FROM due
    WHERE NOT (status = 'paid' AND completed_day <= deadline)
)
SELECT
    'REFUND_OVERDUE' AS kind,
    o.store_id,
    o.overdue_day AS business_date,
    'critical' AS severity,
    CAST(count(*) AS VARCHAR) || ' refunds' AS value,
    CAST(params.days AS VARCHAR) || ' business days' AS threshold,
    CAST(count(*) AS VARCHAR) || ' refund(s) approved and not paid within ' || CAST(params.days AS VARCHAR)
        || ' business days (deadline ' || CAST(min(o.deadline) AS VARCHAR) || '): '
        || array_to_string(list_slice(list(o.refund_id || ' ' || fmt_money(o.amount_cents, o.currency) || ' for CIP ' || o.cip || ' approved ' || CAST(o.approved_day AS VARCHAR) || ', now ' || o.status ORDER BY o.refund_id), 1, 10), '; ')
        || CASE WHEN count(*) > 10 THEN '; and ' || CAST(count(*) - 10 AS VARCHAR) || ' more' ELSE '' END
        || '.' AS message
FROM overdue AS o, params
WHERE in_window(o.store_id, o.overdue_day)
GROUP BY o.store_id, o.overdue_day, params.days
