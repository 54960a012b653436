-- The reconciled items (docs/reconciliation.md, The items): one row per item, with the `evidence` a person reads.
-- A view over `recon_item_rows` (recon_item_rows.sql, written per window by the `recon_items`
-- asset). A plain match's sentence is written here, from the row itself, rather than stored ten
-- million times; every other item's sentence is stored as the model decided it.
SELECT
    store_id, business_date, reference, order_id, cip, status, reason,
    order_currency, order_total_cents, paid_currency, paid_amount_cents, difference_cents,
    refund_candidate,
    coalesce(
        evidence_detail,
        CASE WHEN status = 'MATCHED' AND reason IS NULL THEN
            concat('CIP ', cip, ' paid ', fmt_money(paid_amount_cents, paid_currency), ' on ', fmt_lima(paid_at),
                   ', equal to the order total ', fmt_money(order_total_cents, order_currency), '.')
        END
    ) AS evidence,
    refunded_cents
FROM recon_item_rows
