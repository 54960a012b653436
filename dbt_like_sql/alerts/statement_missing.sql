-- STATEMENT_MISSING: a Peru business day with PagoEfectivo activity for the store (orders placed,
-- or notifications received) but no statement row (CSV or /v1/cips/search, not notifications)
-- paid or created that day, once its cutoff has passed: the cutoff is the N-th business day after
-- it (alerts.statement_cutoff_business_days). Passed means the store's statements already cover a
-- later day (read from the data), or, when nothing arrived at all, the Lima date of the
-- computation (`today`) is after the cutoff day.
-- Variables: stores, start_date, end_date, statement_cutoff_business_days, today.
WITH
params AS (
    SELECT
        CAST(getvariable('stores') AS VARCHAR[]) AS stores,
        CAST(getvariable('start_date') AS DATE) AS start_date,
        CAST(getvariable('end_date') AS DATE) AS end_date,
        CAST(getvariable('statement_cutoff_business_days') AS INTEGER) AS cutoff,
        CAST(getvariable('today') AS DATE) AS today
),
days AS (
    SELECT s.store_id, d.day, n.day AS cutoff_day
    FROM params
    CROSS JOIN (SELECT unnest(CAST(getvariable('stores') AS VARCHAR[])) AS store_id) AS s
    JOIN business_calendar AS d ON d.is_business_day AND d.day BETWEEN params.start_date AND params.end_date
    JOIN business_calendar AS n ON n.is_business_day AND n.business_day_seq = d.business_day_seq + params.cutoff
),
statement AS (
    SELECT store_id, payment_date, creation_date FROM statement_rows WHERE origin <> 'notification'
),
statement_days AS (
    SELECT DISTINCT store_id, payment_date AS day FROM statement WHERE payment_date IS NOT NULL
    UNION
    SELECT DISTINCT store_id, creation_date FROM statement WHERE creation_date IS NOT NULL
),
coverage AS (
    SELECT store_id, max(day) AS coverage_date FROM statement_days GROUP BY store_id
),
activity AS (
    SELECT store_id, day, sum(orders) AS orders, sum(notifications) AS notifications
    FROM (
        SELECT store_id, business_date AS day, count(*) AS orders, 0 AS notifications
        FROM order_rows WHERE is_pagoefectivo GROUP BY ALL
        UNION ALL
        SELECT store_id, payment_date, 0, count(DISTINCT cip)
        FROM statement_rows WHERE origin = 'notification' AND payment_date IS NOT NULL GROUP BY ALL
    )
    GROUP BY store_id, day
)
SELECT
    'STATEMENT_MISSING' AS kind,
    d.store_id,
    d.day AS business_date,
    'warning' AS severity,
    'no statement rows' AS value,
    'due by ' || CAST(d.cutoff_day AS VARCHAR) AS threshold,
    'No PagoEfectivo statement for business day ' || CAST(d.day AS VARCHAR) || ', due by '
        || CAST(d.cutoff_day AS VARCHAR) || ' (statements cover up to '
        || coalesce(CAST(c.coverage_date AS VARCHAR), 'no statement yet') || '); '
        || CAST(a.orders AS VARCHAR) || ' order version(s) and ' || CAST(a.notifications AS VARCHAR)
        || ' notified payment(s) that day wait for it.' AS message
FROM days AS d
CROSS JOIN params
JOIN activity AS a ON a.store_id = d.store_id AND a.day = d.day
LEFT JOIN coverage AS c ON c.store_id = d.store_id
WHERE NOT EXISTS (SELECT 1 FROM statement_days AS s WHERE s.store_id = d.store_id AND s.day = d.day)
  AND (c.coverage_date >= d.cutoff_day OR params.today > d.cutoff_day)
