-- The CIPs of the references in reference_counts, with those counts: the few CIPs that are not a
-- one-to-one match (several for one reference, or no PagoEfectivo order). recon_item_rows.sql
-- reads duplicates and orphans here instead of scanning every CIP for them. A CIP without a
-- reference is here too, on its own (order_count 0, cip_count 1): never grouped with another.
--
-- Refreshed with reference_counts, in the same transaction (reconciliation/models.py,
-- refresh_reference_counts): with the variable `touched_only` set, only the CIPs of the references
-- in `touched_references`, after those have been recounted.
WITH counted AS (
    SELECT * FROM reference_counts WHERE NOT coalesce(getvariable('touched_only'), FALSE)
    UNION ALL
    SELECT * FROM reference_counts AS k
    SEMI JOIN touched_references AS t ON t.store_id = k.store_id AND t.reference = k.reference
    WHERE coalesce(getvariable('touched_only'), FALSE)
)
SELECT p.*, k.order_count, k.cip_count
FROM payments AS p
JOIN counted AS k ON k.store_id = p.store_id AND k.reference = p.reference
UNION ALL
-- CIPs without a reference: each is alone, with no order (touched as the store's NULL reference).
SELECT p.*, 0 AS order_count, 1 AS cip_count
FROM payments AS p
WHERE p.reference IS NULL AND NOT coalesce(getvariable('touched_only'), FALSE)
UNION ALL
SELECT p.*, 0 AS order_count, 1 AS cip_count
FROM payments AS p
SEMI JOIN touched_references AS t ON t.store_id = p.store_id AND t.reference IS NULL
WHERE p.reference IS NULL AND coalesce(getvariable('touched_only'), FALSE)
