-- How far each store's statements reach: the latest date_payment or date_creation among all its
-- clean statement rows (docs/reconciliation.md, Rules). Read from the data, never the wall clock.
SELECT
    store_id,
    greatest(max(date_payment), max(date_creation)) AS coverage_at,
    CAST(timezone('America/Lima', greatest(max(date_payment), max(date_creation))) AS DATE) AS coverage_date
FROM statement_rows
GROUP BY store_id
ORDER BY store_id
