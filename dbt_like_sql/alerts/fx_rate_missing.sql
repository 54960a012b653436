-- FX_RATE_MISSING: a paid CIP that needs a conversion (paid in a currency other than PEN, or in PEN
-- for an order in another currency) on a Lima payment day with no SBS rate for that currency
-- published on or before it (table fx_rates).
-- Variables: stores, start_date, end_date.
WITH
paid AS (
    SELECT DISTINCT p.store_id, p.cip, p.payment_date, p.currency, p.amount_cents,
        CASE WHEN p.currency <> 'PEN' THEN p.currency WHEN o.currency <> 'PEN' THEN o.currency END AS rate_currency
    FROM payments AS p
    LEFT JOIN orders AS o ON o.store_id = p.store_id AND o.reference = p.reference AND o.is_pagoefectivo
    WHERE p.status = 'paid' AND in_window(p.store_id, p.payment_date)
)
SELECT
    'FX_RATE_MISSING' AS kind,
    p.store_id,
    p.payment_date AS business_date,
    'warning' AS severity,
    CAST(count(*) AS VARCHAR) || ' payments' AS value,
    'an SBS rate on or before the payment day' AS threshold,
    CAST(count(*) AS VARCHAR) || ' payment(s) on ' || CAST(p.payment_date AS VARCHAR)
        || ' need an SBS rate that is not known (landing/fx): '
        || array_to_string(list_slice(list('CIP ' || p.cip || ' ' || fmt_money(p.amount_cents, p.currency) || ' needs ' || p.rate_currency ORDER BY p.cip), 1, 10), '; ')
        || CASE WHEN count(*) > 10 THEN '; and ' || CAST(count(*) - 10 AS VARCHAR) || ' more' ELSE '' END
        || '.' AS message
FROM paid AS p
WHERE p.rate_currency IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM fx_rates AS f WHERE f.currency = p.rate_currency AND f.date <= p.payment_date)
GROUP BY p.store_id, p.payment_date
