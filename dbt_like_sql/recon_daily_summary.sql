-- Totals per store, Lima date, currency, paid currency and status over recon_items, for the window.
-- `currency` is the order's, or the payment's for an item with no order; `paid_currency` is the
-- currency actually paid, NULL for an item with no payment, so every sum is in one currency
-- (docs/reconciliation.md, The daily summary): an FX item's USD paid amount never adds into a PEN sum.
SELECT
    store_id,
    business_date,
    coalesce(order_currency, paid_currency) AS currency,
    paid_currency,
    status,
    count(*) AS items,
    CAST(coalesce(sum(order_total_cents), 0) AS BIGINT) AS order_total_cents,
    CAST(coalesce(sum(paid_amount_cents), 0) AS BIGINT) AS paid_amount_cents,
    CAST(coalesce(sum(refunded_cents), 0) AS BIGINT) AS refunded_cents
FROM recon_items
WHERE in_window(store_id, business_date)
GROUP BY ALL
ORDER BY store_id, business_date, currency, paid_currency NULLS LAST, status
