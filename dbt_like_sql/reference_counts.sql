-- The references that need more than a one-to-one match (docs/reconciliation.md): shared by several
-- PagoEfectivo orders of a store, carried by several CIPs, or with no PagoEfectivo order at all.
-- Every other reference has exactly one order and at most one CIP, which is what nine in ten are;
-- recon_item_rows.sql reads this table to treat the few apart.
--
-- Part of the current state, refreshed after orders and payments (reconciliation/models.py,
-- refresh_reference_counts): counting every reference is costly at volume (benchmarks/README.md), so each refresh
-- recounts only the references whose orders or CIPs changed since the last one, listed in
-- `touched_references`. With the variable `touched_only` set, only those are counted; unset,
-- every reference is.
WITH ref_rows AS NOT MATERIALIZED (
    SELECT store_id, reference, TRUE AS is_order FROM orders
    WHERE is_pagoefectivo
    UNION ALL
    -- a CIP without a reference is counted alone, in reference_cips.sql
    SELECT store_id, reference, FALSE FROM payments WHERE reference IS NOT NULL
)
SELECT store_id, reference,
    count(*) FILTER (WHERE is_order) AS order_count,
    count(*) FILTER (WHERE NOT is_order) AS cip_count
FROM (
    SELECT * FROM ref_rows WHERE NOT coalesce(getvariable('touched_only'), FALSE)
    UNION ALL
    SELECT * FROM ref_rows AS r
    SEMI JOIN touched_references AS t ON t.store_id = r.store_id AND t.reference = r.reference
    WHERE coalesce(getvariable('touched_only'), FALSE)
)
GROUP BY store_id, reference
HAVING count(*) FILTER (WHERE is_order) <> 1 OR count(*) FILTER (WHERE NOT is_order) > 1
