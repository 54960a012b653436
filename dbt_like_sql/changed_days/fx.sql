-- The store x Lima days a newly loaded exchange rates file (fx/, every store) may change
-- (docs/operations.md, The landing sensor): the paid CIPs whose day's rate (the rate of that day
-- or the last one before it, as recon_item_rows.sql looks it up) is now one of this file's, with
-- the rates already known: their order's day (reconciliation) and their own day (FX_RATE_MISSING).
-- Run by ingestion/loader.py in the file's own transaction, after its clean rows are in
-- fx_rate_rows and before the current state is refreshed with them; the loader keeps each
-- distinct day once, in `changed_days`. Variables: first_file_seq and file_seq (BIGINT: the files loaded
-- together, from the first to the last; one file: both its number).
-- In the DuckDB shell: SET VARIABLE first_file_seq = 12; SET VARIABLE file_seq = 12;
WITH
new_rates AS (
    SELECT * FROM fx_rate_rows WHERE file_seq BETWEEN getvariable('first_file_seq') AND getvariable('file_seq')
),
rates AS (
    SELECT currency, date, FALSE AS is_new FROM fx_rates
    ANTI JOIN new_rates AS n USING (currency, date)
    UNION ALL
    SELECT DISTINCT currency, date, TRUE FROM new_rates
),
pe_orders AS NOT MATERIALIZED (
    SELECT store_id, reference, business_date, currency FROM orders WHERE is_pagoefectivo
),
converted AS (
    SELECT p.store_id, p.payment_date, o.business_date AS order_date,
        CASE WHEN p.currency <> 'PEN' THEN p.currency ELSE o.currency END AS rate_currency
    FROM payments AS p
    LEFT JOIN pe_orders AS o ON o.store_id = p.store_id AND o.reference = p.reference
    WHERE p.status = 'paid' AND p.payment_date IS NOT NULL AND (SELECT count(*) FROM new_rates) > 0
)
SELECT c.store_id, unnest([c.order_date, c.payment_date]) AS business_date
FROM converted AS c
ASOF JOIN rates AS f ON f.currency = c.rate_currency AND c.payment_date >= f.date
WHERE f.is_new
