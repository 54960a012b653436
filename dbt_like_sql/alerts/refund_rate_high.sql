-- REFUND_RATE_HIGH: refunds asked for a day's payments above alerts.refund_rate_pct percent of
-- them, by count or by amount (per currency). The day's payments are the paid items reconciled on
-- that Lima business date (recon_items; a reversed payment is not paid, so it has no paid
-- amount); a refund counts unless it was rejected.
-- Variables: stores, start_date, end_date, refund_rate_pct.
WITH
params AS (
    SELECT
        CAST(getvariable('refund_rate_pct') AS DECIMAL(9, 4)) AS pct
),
paid AS (
    SELECT i.store_id, i.business_date, i.cip, i.paid_currency AS currency, i.paid_amount_cents
    FROM recon_items AS i
    WHERE in_window(i.store_id, i.business_date)
      AND i.paid_amount_cents IS NOT NULL AND i.cip IS NOT NULL
),
refunded AS (
    SELECT r.store_id, r.cip, CAST(sum(r.amount_cents) AS BIGINT) AS refund_cents
    FROM refunds AS r
    WHERE r.status <> 'rejected'
    GROUP BY r.store_id, r.cip
),
per_currency AS (
    SELECT p.store_id, p.business_date, p.currency,
        count(*) AS payments,
        count(f.cip) AS refunds,
        CAST(sum(p.paid_amount_cents) AS BIGINT) AS paid_cents,
        CAST(coalesce(sum(f.refund_cents), 0) AS BIGINT) AS refund_cents
    FROM paid AS p
    LEFT JOIN refunded AS f ON f.store_id = p.store_id AND f.cip = p.cip
    GROUP BY p.store_id, p.business_date, p.currency
),
per_day AS (
    SELECT store_id, business_date,
        sum(payments) AS payments,
        sum(refunds) AS refunds,
        bool_or(paid_cents > 0 AND refund_cents * 100 > params.pct * paid_cents) AS over_by_amount,
        max(CASE WHEN paid_cents > 0 THEN 100.0 * refund_cents / paid_cents END) AS amount_rate,
        string_agg(fmt_money(refund_cents, currency) || ' of ' || fmt_money(paid_cents, currency), ', ' ORDER BY currency) AS amounts
    FROM per_currency, params
    GROUP BY store_id, business_date
)
SELECT
    'REFUND_RATE_HIGH' AS kind,
    store_id,
    business_date,
    'warning' AS severity,
    printf('%.1f%%', greatest(100.0 * refunds / payments, amount_rate)) AS value,
    fmt_decimal(params.pct) || '%' AS threshold,
    'Refunds asked for ' || CAST(refunds AS VARCHAR) || ' of ' || CAST(payments AS VARCHAR)
        || ' payments reconciled on ' || CAST(business_date AS VARCHAR)
        || printf(' (%.1f%% by count; by amount ', 100.0 * refunds / payments) || amounts
        || '), above ' || fmt_decimal(params.pct) || '%.' AS message
FROM per_day, params
WHERE payments > 0 AND (refunds * 100 > params.pct * payments OR over_by_amount)
