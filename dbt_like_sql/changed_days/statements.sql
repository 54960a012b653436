-- The store x Lima days a newly loaded statement file (CSV, /v1/cips/search JSON, notification)
-- may change (docs/operations.md, The landing sensor): each CIP's own days, the days of the
-- orders it pays, and, where the file moves the store's statement coverage forward, the days of
-- the orders whose status the wider coverage changes. The rules are the reconciliation's own:
-- grace days and expiry through the macros recon_item_rows.sql uses.
-- Run by ingestion/loader.py in the file's own transaction, after its clean rows are in
-- statement_rows and before the current state is refreshed with them; the loader keeps each
-- distinct day once, in `changed_days`. Variables: first_file_seq and file_seq (BIGINT: the files loaded
-- together, from the first to the last; one file: both its number),
-- grace_business_days (INTEGER).
-- In the DuckDB shell: SET VARIABLE first_file_seq = 12; SET VARIABLE file_seq = 12; SET VARIABLE grace_business_days = 2;
WITH
new_cips AS (
    SELECT * FROM statement_rows WHERE file_seq BETWEEN getvariable('first_file_seq') AND getvariable('file_seq')
),
pe_orders AS NOT MATERIALIZED (
    SELECT store_id, order_id, reference, business_date, status FROM orders WHERE is_pagoefectivo
),
-- Each CIP's own days, and the days of the orders it pays (a late payment changes an earlier
-- order's day).
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
)
FROM statement_days
UNION ALL FROM grace_days_passed
UNION ALL FROM expiries_passed
