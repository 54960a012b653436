-- The reconciled items (docs/reconciliation.md, The items): one row per item, with the `evidence` a person reads.
-- A view over `recon_item_rows` (recon_item_rows.sql, written per window by the `recon_items`
-- asset). The English `evidence` is written here from the row's message code and values by the
-- macros generated from reconciliation/evidence_catalog.py (`evidence_en`, `evidence_en_plain`);
-- a plain match's values are the row's own columns rather than stored ten million times.
-- `evidence_code` and `evidence_args` are what reports in other languages render.
SELECT
    store_id, business_date, reference, order_id, cip, status, reason,
    order_currency, order_total_cents, paid_currency, paid_amount_cents, difference_cents,
    refund_candidate,
    CASE
        WHEN evidence_code IS NULL THEN evidence_detail  -- written as text by an earlier version: kept as it was
        WHEN evidence_args IS NULL THEN evidence_en_plain(plain_values)
        ELSE evidence_en(evidence_code, evidence_args)
    END AS evidence,
    refunded_cents,
    evidence_code,
    CASE WHEN evidence_code IS NOT NULL THEN coalesce(evidence_args, to_json(plain_values)) END AS evidence_args,
    provisional  -- the day's statements are not final yet: the item may still change
FROM (
    SELECT *,
        {'cip': cip, 'paid': fmt_money(paid_amount_cents, paid_currency), 'at': fmt_lima(paid_at),
         'total': fmt_money(order_total_cents, order_currency)} AS plain_values
    FROM recon_item_rows
)
