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
overdue AS (
    -- the rule itself: macro overdue_refunds (alerts/schema.sql), shared with `pagorecon status`
    SELECT o.*
    FROM params, overdue_refunds(CAST(getvariable('refund_overdue_business_days') AS INTEGER)) AS o
    WHERE list_contains(params.stores, o.store_id)
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
