-- FX_RATE_MISSING, per store: a paid CIP that needs a conversion (paid in a currency other than PEN,
-- or in PEN for an order in another currency) on a Lima payment day with no SBS rate for that
-- currency published on or before it (table fx_rates).
-- And for every store (store_id NULL), once the hourly sync fetches the rates from the BCRP
-- (fx_fetches has rows): a Lima business day of the window, from the first day fetched, whose last
-- fetch failed, or with no USD rate once it is due (`fx_rate_due_hour` Lima of that day).
-- Variables: stores, start_date, end_date, today, now (TIMESTAMPTZ), fx_rate_due_hour.
WITH
paid AS (
    SELECT DISTINCT p.store_id, p.cip, p.payment_date, p.currency, p.amount_cents,
        CASE WHEN p.currency <> 'PEN' THEN p.currency WHEN o.currency <> 'PEN' THEN o.currency END AS rate_currency
    FROM payments AS p
    LEFT JOIN orders AS o ON o.store_id = p.store_id AND o.reference = p.reference AND o.is_pagoefectivo
    WHERE p.status = 'paid' AND in_window(p.store_id, p.payment_date)
),
fetch_days AS (
    -- a fetch speaks for the day it was fetched up to (the day the hourly sync was syncing)
    SELECT end_date AS day,
        arg_max({'status': status, 'error': error, 'at': fetched_at}, fetched_at) AS last_fetch
    FROM fx_fetches
    GROUP BY ALL
),
feed_days AS (
    SELECT d.day,
        d.day < CAST(getvariable('today') AS DATE)
            OR (d.day = CAST(getvariable('today') AS DATE)
                AND hour(timezone('America/Lima', CAST(getvariable('now') AS TIMESTAMPTZ))) >= CAST(getvariable('fx_rate_due_hour') AS INTEGER))
            AS is_due,
        EXISTS (SELECT 1 FROM fx_rates AS f WHERE f.currency = 'USD' AND f.date = d.day) AS has_rate,
        CASE WHEN f.last_fetch.status = 'failed' THEN f.last_fetch END AS failed_fetch
    FROM business_calendar AS d
    LEFT JOIN fetch_days AS f ON f.day = d.day
    WHERE d.is_business_day
      AND d.day BETWEEN CAST(getvariable('start_date') AS DATE) AND CAST(getvariable('end_date') AS DATE)
      AND d.day >= (SELECT min(start_date) FROM fx_fetches)
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
UNION ALL
SELECT
    'FX_RATE_MISSING' AS kind,
    CAST(NULL AS VARCHAR) AS store_id,
    day AS business_date,
    'warning' AS severity,
    CASE WHEN failed_fetch IS NOT NULL THEN 'fetch failed' ELSE 'no USD rate' END AS value,
    'the SBS USD rate from the BCRP by ' || lpad(CAST(getvariable('fx_rate_due_hour') AS VARCHAR), 2, '0') || ':00 Lima' AS threshold,
    CASE WHEN failed_fetch IS NOT NULL
        THEN 'The BCRP rate fetch of ' || fmt_lima(failed_fetch.at) || ' failed: ' || coalesce(failed_fetch.error, 'no error given')
            || CASE WHEN has_rate THEN '.' ELSE '; business day ' || CAST(day AS VARCHAR) || ' has no SBS USD rate (landing/fx).' END
        ELSE 'Business day ' || CAST(day AS VARCHAR) || ' has no SBS USD rate from the BCRP (landing/fx) by '
            || lpad(CAST(getvariable('fx_rate_due_hour') AS VARCHAR), 2, '0') || ':00 Lima.'
    END AS message
FROM feed_days
WHERE failed_fetch IS NOT NULL OR (is_due AND NOT has_rate)
