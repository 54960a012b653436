-- The store x Lima days a newly loaded refund requests file may change (docs/operations.md, The
-- landing sensor): the day each was requested, and the day of the item it refunds (its order's
-- day, or an orphan CIP's payment day). Order ids compare as references do
-- (docs/landing-formats.md, Orders).
-- Run by ingestion/loader.py in the file's own transaction, after its clean rows are in
-- refund_request_rows and before the current state is refreshed with them; the loader keeps each
-- distinct day once, in `changed_days`. Variables: first_file_seq and file_seq (BIGINT: the files loaded
-- together, from the first to the last; one file: both its number).
-- In the DuckDB shell: SET VARIABLE first_file_seq = 12; SET VARIABLE file_seq = 12;
WITH
new_refunds AS (
    SELECT * FROM refund_request_rows WHERE file_seq BETWEEN getvariable('first_file_seq') AND getvariable('file_seq')
),
pe_orders AS NOT MATERIALIZED (
    SELECT store_id, reference, business_date FROM orders WHERE is_pagoefectivo
)
SELECT store_id, CAST(timezone('America/Lima', requested_at) AS DATE) AS business_date FROM new_refunds
UNION ALL
SELECT o.store_id, o.business_date FROM pe_orders AS o
SEMI JOIN new_refunds AS q ON q.store_id = o.store_id AND o.reference = upper(regexp_replace(trim(q.order_id), '^#\s*', ''))
UNION ALL
SELECT r.store_id, r.payment_date FROM reference_cips AS r
SEMI JOIN new_refunds AS q ON q.store_id = r.store_id AND q.cip = r.cip
WHERE r.order_count = 0
