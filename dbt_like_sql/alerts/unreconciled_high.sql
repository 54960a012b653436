-- UNRECONCILED_HIGH: the share of a day's reconciled items that need a person is above
-- alerts.unreconciled_pct percent. A status needs a person when its group in `status_catalog`
-- (reconciliation/catalog.py) is needs_action, or when the catalog does not know it.
-- Variables: stores, start_date, end_date, unreconciled_pct.
WITH
params AS (
    SELECT
        CAST(getvariable('unreconciled_pct') AS DECIMAL(9, 4)) AS pct
),
by_status AS (
    SELECT s.store_id, s.business_date, s.status, sum(s.items) AS items,
        coalesce(any_value(k.status_group), 'needs_action') = 'needs_action' AS needs_person
    FROM recon_daily_summary AS s
    LEFT JOIN (SELECT DISTINCT status, status_group FROM status_catalog) AS k ON k.status = s.status
    WHERE in_window(s.store_id, s.business_date)
    GROUP BY s.store_id, s.business_date, s.status
),
per_day AS (
    SELECT store_id, business_date,
        sum(items) AS items,
        coalesce(sum(items) FILTER (WHERE needs_person), 0) AS open_items,
        string_agg(status || ' ' || CAST(items AS VARCHAR), ', ' ORDER BY status) FILTER (WHERE needs_person) AS open_statuses
    FROM by_status
    GROUP BY store_id, business_date
)
SELECT
    'UNRECONCILED_HIGH' AS kind,
    store_id,
    business_date,
    'warning' AS severity,
    printf('%.1f%%', 100.0 * open_items / items) AS value,
    fmt_decimal(params.pct) || '%' AS threshold,
    CAST(open_items AS VARCHAR) || ' of ' || CAST(items AS VARCHAR) || ' items reconciled on '
        || CAST(business_date AS VARCHAR) || ' need a person (' || open_statuses || '), above '
        || fmt_decimal(params.pct) || '%.' AS message
FROM per_day, params
WHERE items > 0 AND open_items * 100 > params.pct * items
