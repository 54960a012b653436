-- The store x Lima days whose reconciled items one newly loaded landing file may change
-- (docs/operations.md, The landing sensor). Run by ingestion/loader.py in the file's own
-- transaction, after its clean rows are in the raw tables and before the current state
-- (orders, payments, reference_cips, fx_rates, statement_coverage) is refreshed with them: the
-- current state is what the file changes. The rules are the reconciliation's own: grace days and
-- expiry through the macros recon_item_rows.sql uses, orphans as reference_cips counts them, rates
-- served as of a payment's day as recon_item_rows.sql looks them up.
-- Variables: file_seq (BIGINT, the file), grace_business_days (INTEGER).
-- In the DuckDB shell: SET VARIABLE file_seq = 12; SET VARIABLE grace_business_days = 2;
WITH
new_cips AS (
    SELECT * FROM statement_rows WHERE file_seq = getvariable('file_seq')
),
new_orders AS (
    SELECT * FROM order_rows WHERE file_seq = getvariable('file_seq')
),
new_rates AS (
    SELECT * FROM fx_rate_rows WHERE file_seq = getvariable('file_seq')
),
new_refunds AS (
    SELECT * FROM refund_request_rows WHERE file_seq = getvariable('file_seq')
),
pe_orders AS NOT MATERIALIZED (
    SELECT store_id, order_id, reference, business_date, status, currency FROM orders WHERE is_pagoefectivo
),
-- Statements: each CIP's own days, and the days of the orders it pays (a late payment changes an
-- earlier order's day).
statement_days AS (
    SELECT store_id, payment_date AS business_date FROM new_cips
    UNION ALL
    SELECT store_id, creation_date FROM new_cips
    UNION ALL
    SELECT o.store_id, o.business_date FROM pe_orders AS o
    SEMI JOIN new_cips AS c ON c.store_id = o.store_id AND c.reference = o.reference
),
-- How far the statements reached before this file and how far they reach with it, where it moves.
coverage_move AS (
    SELECT c.store_id, max(old.coverage_at) AS old_at, max(old.coverage_date) AS old_date,
        greatest(max(c.date_payment), max(c.date_creation)) AS new_at,
        CAST(timezone('America/Lima', greatest(max(c.date_payment), max(c.date_creation))) AS DATE) AS new_date
    FROM new_cips AS c
    LEFT JOIN statement_coverage AS old ON old.store_id = c.store_id
    GROUP BY c.store_id
    HAVING new_at > coalesce(max(old.coverage_at), '-infinity'::TIMESTAMPTZ)
),
-- Orders marked paid whose grace day the statements reach only now: MISSING_PAYMENT from here on.
grace_days_passed AS (
    SELECT o.store_id, o.business_date
    FROM pe_orders AS o
    JOIN coverage_move AS m ON m.store_id = o.store_id
    JOIN grace_days(CAST(getvariable('grace_business_days') AS INTEGER)) AS g ON g.business_date = o.business_date
    WHERE o.status IN ('paid', 'refunded')
      AND covers_grace_day(m.new_date, g.grace_day) AND NOT coalesce(covers_grace_day(m.old_date, g.grace_day), FALSE)
),
-- Orders of CIPs whose expiry the statements pass only now: EXPIRED_UNPAID from here on.
expiries_passed AS (
    SELECT o.store_id, o.business_date
    FROM payments AS p
    JOIN coverage_move AS m ON m.store_id = p.store_id
    JOIN pe_orders AS o ON o.store_id = p.store_id AND o.reference = p.reference
    WHERE expired_by(p.date_expiry, m.new_at) AND NOT coalesce(expired_by(p.date_expiry, m.old_at), FALSE)
),
-- Orders: their days, the day a restated order leaves, and the payment days of the CIPs that were
-- orphans until this file brought their order.
order_days AS (
    SELECT store_id, business_date FROM new_orders
    UNION ALL
    SELECT o.store_id, o.business_date FROM orders AS o
    SEMI JOIN new_orders AS n ON n.store_id = o.store_id AND n.order_id = o.order_id
    UNION ALL
    SELECT r.store_id, r.payment_date FROM reference_cips AS r
    SEMI JOIN new_orders AS n ON n.store_id = r.store_id AND n.reference = r.reference
    WHERE r.order_count = 0 AND r.status IN ('paid', 'reversed')
),
-- Refund requests: the day each was requested, and the day of the item it refunds (its order's
-- day, or an orphan CIP's payment day). Order ids compare as references do (docs/landing-formats.md, Orders).
refund_days AS (
    SELECT store_id, CAST(timezone('America/Lima', requested_at) AS DATE) FROM new_refunds
    UNION ALL
    SELECT o.store_id, o.business_date FROM pe_orders AS o
    SEMI JOIN new_refunds AS q ON q.store_id = o.store_id AND o.reference = upper(regexp_replace(trim(q.order_id), '^#\s*', ''))
    UNION ALL
    SELECT r.store_id, r.payment_date FROM reference_cips AS r
    SEMI JOIN new_refunds AS q ON q.store_id = r.store_id AND q.cip = r.cip
    WHERE r.order_count = 0
),
-- Rates: the paid CIPs whose day's rate (the rate of that day or the last one before it) is now
-- one of this file's, with the rates already known: their order's day (reconciliation) and their
-- own day (FX_RATE_MISSING).
rates AS (
    SELECT currency, date, FALSE AS is_new FROM fx_rates
    ANTI JOIN new_rates AS n USING (currency, date)
    UNION ALL
    SELECT DISTINCT currency, date, TRUE FROM new_rates
),
converted AS (
    SELECT p.store_id, p.payment_date, o.business_date AS order_date,
        CASE WHEN p.currency <> 'PEN' THEN p.currency ELSE o.currency END AS rate_currency
    FROM payments AS p
    LEFT JOIN pe_orders AS o ON o.store_id = p.store_id AND o.reference = p.reference
    WHERE p.status = 'paid' AND p.payment_date IS NOT NULL AND (SELECT count(*) FROM new_rates) > 0
),
rate_days AS (
    SELECT c.store_id, unnest([c.order_date, c.payment_date]) AS business_date
    FROM converted AS c
    ASOF JOIN rates AS f ON f.currency = c.rate_currency AND c.payment_date >= f.date
    WHERE f.is_new
)
SELECT DISTINCT CAST(getvariable('file_seq') AS BIGINT) AS file_seq, store_id, business_date
FROM (
    FROM statement_days
    UNION ALL FROM grace_days_passed
    UNION ALL FROM expiries_passed
    UNION ALL FROM order_days
    UNION ALL FROM refund_days
    UNION ALL FROM rate_days
)
WHERE business_date IS NOT NULL
ORDER BY store_id, business_date
