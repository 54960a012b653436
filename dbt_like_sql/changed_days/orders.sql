-- The store x Lima days a newly loaded orders file may change (docs/operations.md, The landing
-- sensor): its orders' days, the day a restated order leaves (its previous version's date), and
-- the payment days of the CIPs that were orphans until this file brought their order (orphans as
-- reference_cips counts them).
-- Run by ingestion/loader.py in the file's own transaction, after its clean rows are in
-- order_rows and before the current state is refreshed with them; the loader keeps each distinct
-- day once, in `changed_days`. Variables: first_file_seq and file_seq (BIGINT: the files loaded
-- together, from the first to the last; one file: both its number).
-- In the DuckDB shell: SET VARIABLE first_file_seq = 12; SET VARIABLE file_seq = 12;
WITH
new_orders AS (
    SELECT * FROM order_rows WHERE file_seq BETWEEN getvariable('first_file_seq') AND getvariable('file_seq')
)
SELECT store_id, business_date FROM new_orders
UNION ALL
SELECT o.store_id, o.business_date FROM orders AS o
SEMI JOIN new_orders AS n ON n.store_id = o.store_id AND n.order_id = o.order_id
UNION ALL
SELECT r.store_id, r.payment_date FROM reference_cips AS r
SEMI JOIN new_orders AS n ON n.store_id = r.store_id AND n.reference = r.reference
WHERE r.order_count = 0 AND r.status IN ('paid', 'reversed')
