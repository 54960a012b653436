-- Reconciled items for the stores and Lima dates of the window (docs/reconciliation.md), as stored:
-- `recon_items` (recon_items.sql) is the view over these rows that finance and the other models read.
-- Variables: stores (VARCHAR[]), start_date, end_date (DATE), fx_tolerance_pct (DECIMAL),
-- grace_business_days (INTEGER).
-- In the DuckDB shell: SET VARIABLE stores = ['lima_shop']; ...
--
-- Built for volume (10M orders, benchmarks/README.md): orders and CIPs are each scanned about
-- twice and never copied whole; what concerns only a few references (several CIPs, shared
-- references, orphans) is read from reference_counts and reference_cips, which the current state
-- keeps. reconciliation/models.py runs this once per store of the window. The evidence is a message
-- code (`evidence_code`) and its values (`evidence_args`, JSON: amounts, Lima times and dates
-- already written), rendered in every language from reconciliation/evidence_catalog.py. A plain
-- match (same currency, one CIP, exact amount), about nine rows in ten, stores no values: they are
-- the row's own columns and `paid_at`.
WITH
params AS (
    SELECT
        CAST(getvariable('fx_tolerance_pct') AS DECIMAL(9, 4)) AS tolerance_pct,
        CAST(getvariable('grace_business_days') AS INTEGER) AS grace
),
-- The window's PagoEfectivo orders.
window_orders AS NOT MATERIALIZED (
    SELECT store_id, business_date, reference, order_id, status, currency, total_cents, cip
    FROM orders
    WHERE is_pagoefectivo AND in_window(store_id, business_date)
),
-- The few references that need more than a one-to-one match: shared by several PagoEfectivo
-- orders, carried by several CIPs, or with no order at all, and their CIPs (reference_counts.sql
-- and reference_cips.sql, kept up to date with orders and payments by the current state's refresh).
ref_counts AS (
    SELECT * FROM reference_counts WHERE in_stores(store_id)
),
shared_refs AS (
    SELECT o.store_id, o.reference, arg_min(o.order_id, (o.created_at, o.order_id)) AS owner_order_id
    FROM orders AS o
    SEMI JOIN ref_counts AS k ON k.order_count > 1 AND k.store_id = o.store_id AND k.reference = o.reference
    WHERE o.is_pagoefectivo AND in_stores(o.store_id)
    GROUP BY o.store_id, o.reference
),
multi_keys AS (
    SELECT store_id, reference FROM ref_counts WHERE cip_count > 1
),
multi_cips AS (
    SELECT *, coalesce(date_creation, date_payment, date_expiry) AS seen_at
    FROM reference_cips
    WHERE cip_count > 1 AND in_stores(store_id)
),
-- Per reference: its first paid CIP (by date_payment, then cip), how many are paid, whether one
-- was reversed, its latest CIP (by creation, then cip) and all of them for the evidence; a
-- reference with a single CIP reads all this from that CIP's own row.
multi_groups AS (
    SELECT store_id, reference,
        count(*) FILTER (WHERE status = 'paid') AS paid_count,
        bool_or(status = 'reversed') AS any_reversed,
        arg_min({'cip': cip, 'currency': currency, 'amount_cents': amount_cents, 'date_payment': date_payment, 'payment_date': payment_date},
                (date_payment, cip)) FILTER (WHERE status = 'paid') AS first_paid,
        arg_max({'cip': cip, 'status': status, 'date_expiry': date_expiry}, (seen_at, cip)) AS latest,
        list({'cip': cip, 'status': status} ORDER BY seen_at, cip) AS all_cips
    FROM multi_cips
    GROUP BY store_id, reference
),
cip_groups AS (
    SELECT p.store_id, p.reference,
        CASE WHEN p.status = 'paid' THEN 1 ELSE 0 END AS paid_count,
        p.status = 'reversed' AS any_reversed,
        CASE WHEN p.status = 'paid' THEN p.cip END AS paid_cip,
        CASE WHEN p.status = 'paid' THEN p.currency END AS paid_currency,
        CASE WHEN p.status = 'paid' THEN p.amount_cents END AS paid_cents,
        CASE WHEN p.status = 'paid' THEN p.date_payment END AS date_payment,
        CASE WHEN p.status = 'paid' THEN p.payment_date END AS payment_date,
        p.cip AS latest_cip, p.status AS latest_status, p.date_expiry AS latest_expiry,
        CAST(NULL AS STRUCT(cip VARCHAR, status VARCHAR)[]) AS all_cips
    FROM payments AS p
    ANTI JOIN multi_keys AS k ON k.store_id = p.store_id AND k.reference = p.reference
    WHERE in_stores(p.store_id)
    UNION ALL
    SELECT store_id, reference, paid_count, any_reversed,
        first_paid.cip, first_paid.currency, first_paid.amount_cents, first_paid.date_payment, first_paid.payment_date,
        latest.cip, latest.status, latest.date_expiry,
        all_cips
    FROM multi_groups
),
-- Each order and whether it owns its reference: the only one with it, or the first of the
-- orders sharing it. Only the owner gets the reference's CIPs.
owned_orders AS NOT MATERIALIZED (
    SELECT o.*, s.owner_order_id,
        s.owner_order_id IS NULL OR s.owner_order_id = o.order_id AS is_owner
    FROM window_orders AS o
    LEFT JOIN shared_refs AS s ON s.store_id = o.store_id AND s.reference = o.reference
),
order_facts AS (
    SELECT
        o.store_id, o.business_date, o.reference, o.order_id, o.status AS order_status,
        o.currency AS order_currency, o.total_cents, o.cip AS order_cip,
        CASE WHEN o.is_owner THEN 1 ELSE 2 END AS ref_rank,
        o.owner_order_id AS first_order_id,
        g.paid_cip, g.paid_currency, g.paid_cents, g.date_payment, g.payment_date, g.paid_count, g.any_reversed,
        g.latest_cip, g.latest_status, g.latest_expiry, g.all_cips
    FROM owned_orders AS o
    -- One equi-join: a reference that is not the order's own matches no CIP. (With the ownership
    -- test in the ON clause instead, DuckDB 1.5 plans a nested-loop join: benchmarks/README.md.)
    LEFT JOIN cip_groups AS g
        ON g.store_id = o.store_id AND g.reference = CASE WHEN o.is_owner THEN o.reference END
),
-- SBS sell rates by Lima day: the rate published that day or the last one before it.
fx_days AS (
    SELECT c.currency, CAST(d.day AS DATE) AS day, f.sell, f.date AS rate_date
    FROM (SELECT DISTINCT currency FROM fx_rates) AS c
    CROSS JOIN (
        SELECT unnest(generate_series(CAST(min(date) AS TIMESTAMP), CAST((SELECT max(payment_date) FROM payments) AS TIMESTAMP), INTERVAL 1 DAY)) AS day
        FROM fx_rates
    ) AS d
    ASOF JOIN fx_rates AS f ON f.currency = c.currency AND CAST(d.day AS DATE) >= f.date
),
primary_facts AS (
    SELECT
        o.*,
        o.order_status = 'cancelled' AS is_cancelled,
        o.order_status IN ('paid', 'refunded') AS marked_paid,
        cov.coverage_at, cov.coverage_date,
        g.grace_day,
        r.sell, r.rate_date,
        params.tolerance_pct, params.grace,
        -- the paid amount in the order's currency (only when they differ and a rate is known)
        CASE
            WHEN r.sell IS NULL THEN NULL
            WHEN o.paid_currency = 'PEN' THEN CAST(round(CAST(o.paid_cents AS DECIMAL(38, 6)) / r.sell) AS BIGINT)
            WHEN o.order_currency = 'PEN' THEN CAST(round(CAST(o.paid_cents AS DECIMAL(38, 6)) * r.sell) AS BIGINT)
        END AS converted_cents,
        -- |paid/sell - total| <= total * tol/100, rewritten without division, exact in DECIMAL
        CASE
            WHEN r.sell IS NULL THEN FALSE
            WHEN o.paid_currency = 'PEN' THEN abs(o.paid_cents - o.total_cents * r.sell) * 100 <= o.total_cents * r.sell * params.tolerance_pct
            WHEN o.order_currency = 'PEN' THEN abs(o.paid_cents * r.sell - o.total_cents) * 100 <= o.total_cents * params.tolerance_pct
            ELSE FALSE
        END AS within_fx_tolerance
    FROM order_facts AS o
    CROSS JOIN params
    -- Paid in another currency than the order: the SBS sell rate of the payment's Lima date. Only
    -- equalities: with the currency test beside them DuckDB 1.5 plans a nested-loop join.
    LEFT JOIN fx_days AS r
        ON r.day = o.payment_date
       AND r.currency = CASE WHEN o.paid_currency <> o.order_currency
                            THEN CASE WHEN o.paid_currency <> 'PEN' THEN o.paid_currency ELSE o.order_currency END END
    LEFT JOIN statement_coverage AS cov ON cov.store_id = o.store_id
    LEFT JOIN grace_days(CAST(getvariable('grace_business_days') AS INTEGER)) AS g ON g.business_date = o.business_date
),
primary_rows AS (
    SELECT f.*,
        CASE
            WHEN paid_cip IS NOT NULL AND is_cancelled THEN 'PAID_CANCELLED_ORDER'
            WHEN paid_cip IS NOT NULL AND paid_currency = order_currency AND paid_cents = total_cents THEN 'MATCHED'
            WHEN paid_cip IS NOT NULL AND paid_currency = order_currency THEN 'AMOUNT_MISMATCH'
            WHEN paid_cip IS NOT NULL AND within_fx_tolerance THEN 'MATCHED'
            WHEN paid_cip IS NOT NULL THEN 'CURRENCY_MISMATCH'
            WHEN is_cancelled THEN 'CANCELLED_UNPAID'
            WHEN any_reversed THEN 'REVERSED'
            WHEN marked_paid AND covers_grace_day(coverage_date, grace_day) THEN 'MISSING_PAYMENT'
            WHEN NOT marked_paid AND (latest_status IN ('expired', 'deleted') OR expired_by(latest_expiry, coverage_at)) THEN 'EXPIRED_UNPAID'
            ELSE 'AWAITING_PAYMENT'
        END AS status,
        -- a plain match (MATCHED, same currency, one CIP, no other cip on the order): the view writes
        -- its sentence. Tested on the facts rather than on `status`, which makes the projection
        -- below cheaper (benchmarks/README.md, Figures behind the SQL).
        paid_cip IS NOT NULL AND NOT is_cancelled AND paid_currency = order_currency AND paid_cents = total_cents
            AND all_cips IS NULL AND (order_cip IS NULL OR order_cip = paid_cip) AS is_plain
    FROM primary_facts AS f
),
-- Which sentence says why (reconciliation/evidence_catalog.py).
primary_coded AS (
    SELECT *,
        CASE status
            WHEN 'MATCHED' THEN CASE WHEN paid_currency = order_currency THEN 'PAID_IN_FULL' ELSE 'PAID_WITHIN_FX_TOLERANCE' END
            WHEN 'AMOUNT_MISMATCH' THEN CASE WHEN paid_cents < total_cents THEN 'UNDERPAID' ELSE 'OVERPAID' END
            WHEN 'CURRENCY_MISMATCH' THEN CASE WHEN sell IS NULL THEN 'NO_FX_RATE' ELSE 'OUTSIDE_FX_TOLERANCE' END
            WHEN 'MISSING_PAYMENT' THEN 'NOT_IN_STATEMENTS'
            WHEN 'EXPIRED_UNPAID' THEN CASE WHEN latest_status IN ('expired', 'deleted') THEN 'CIP_CLOSED' ELSE 'CIP_EXPIRED_BEFORE_COVERAGE' END
            WHEN 'AWAITING_PAYMENT' THEN CASE
                WHEN ref_rank > 1 THEN 'DUPLICATE_REFERENCE'
                WHEN marked_paid THEN 'WITHIN_GRACE'
                WHEN latest_cip IS NULL THEN 'NO_CIP'
                ELSE 'CIP_PENDING' END
            ELSE status  -- PAID_CANCELLED_ORDER, CANCELLED_UNPAID, REVERSED
        END AS evidence_code
    FROM primary_rows
),
primary_items AS (
    SELECT
        store_id, business_date, reference, order_id,
        coalesce(paid_cip, latest_cip) AS cip,
        status,
        CASE status
            WHEN 'MATCHED' THEN CASE WHEN paid_currency <> order_currency THEN 'FX_CONVERTED' END
            WHEN 'AMOUNT_MISMATCH' THEN CASE WHEN paid_cents < total_cents THEN 'UNDERPAID' ELSE 'OVERPAID' END
            WHEN 'CURRENCY_MISMATCH' THEN CASE WHEN sell IS NULL THEN 'NO_FX_RATE' ELSE 'OUTSIDE_FX_TOLERANCE' END
            WHEN 'PAID_CANCELLED_ORDER' THEN 'ORDER_CANCELLED'
            WHEN 'REVERSED' THEN 'EXTORNO'
            WHEN 'MISSING_PAYMENT' THEN 'NOT_IN_STATEMENTS'
            WHEN 'EXPIRED_UNPAID' THEN CASE WHEN latest_status = 'deleted' THEN 'CIP_DELETED' ELSE 'CIP_EXPIRED' END
            WHEN 'AWAITING_PAYMENT' THEN CASE
                WHEN ref_rank > 1 THEN 'DUPLICATE_REFERENCE'
                WHEN marked_paid THEN 'WITHIN_GRACE'
                WHEN latest_cip IS NULL THEN 'NO_CIP'
                ELSE 'CIP_PENDING' END
            WHEN 'CANCELLED_UNPAID' THEN CASE WHEN ref_rank > 1 THEN 'DUPLICATE_REFERENCE' END
        END AS reason,
        order_currency, total_cents AS order_total_cents,
        paid_currency, paid_cents AS paid_amount_cents,
        CASE
            WHEN paid_cip IS NULL THEN NULL
            WHEN status = 'PAID_CANCELLED_ORDER' THEN paid_cents
            WHEN paid_currency = order_currency THEN paid_cents - total_cents
            WHEN converted_cents IS NOT NULL THEN converted_cents - total_cents
        END AS difference_cents,
        date_payment AS paid_at,
        evidence_code,
        CASE WHEN NOT is_plain THEN json_merge_patch(
            CASE evidence_code
                WHEN 'PAID_IN_FULL' THEN json_object('cip', paid_cip, 'paid', fmt_money(paid_cents, paid_currency),
                    'at', fmt_lima(date_payment), 'total', fmt_money(total_cents, order_currency))
                WHEN 'PAID_WITHIN_FX_TOLERANCE' THEN json_object('cip', paid_cip, 'paid', fmt_money(paid_cents, paid_currency),
                    'at', fmt_lima(date_payment), 'rate', fmt_decimal(sell), 'rate_date', rate_date,
                    'converted', fmt_money(converted_cents, order_currency), 'total', fmt_money(total_cents, order_currency),
                    'pct', fmt_decimal(tolerance_pct))
                WHEN 'UNDERPAID' THEN json_object('cip', paid_cip, 'paid', fmt_money(paid_cents, paid_currency),
                    'at', fmt_lima(date_payment), 'total', fmt_money(total_cents, order_currency),
                    'gap', fmt_money(total_cents - paid_cents, order_currency))
                WHEN 'OVERPAID' THEN json_object('cip', paid_cip, 'paid', fmt_money(paid_cents, paid_currency),
                    'at', fmt_lima(date_payment), 'total', fmt_money(total_cents, order_currency),
                    'gap', fmt_money(paid_cents - total_cents, order_currency))
                WHEN 'NO_FX_RATE' THEN json_object('cip', paid_cip, 'paid', fmt_money(paid_cents, paid_currency),
                    'at', fmt_lima(date_payment), 'currency', order_currency, 'total', fmt_money(total_cents, order_currency),
                    'day', payment_date)
                WHEN 'OUTSIDE_FX_TOLERANCE' THEN json_object('cip', paid_cip, 'paid', fmt_money(paid_cents, paid_currency),
                    'at', fmt_lima(date_payment), 'currency', order_currency, 'total', fmt_money(total_cents, order_currency),
                    'rate', fmt_decimal(sell), 'rate_date', rate_date, 'converted', fmt_money(converted_cents, order_currency),
                    'pct', fmt_decimal(tolerance_pct))
                WHEN 'PAID_CANCELLED_ORDER' THEN json_object('status', order_status, 'cip', paid_cip,
                    'paid', fmt_money(paid_cents, paid_currency), 'at', fmt_lima(date_payment))
                WHEN 'REVERSED' THEN json_object('cip', latest_cip)
                WHEN 'NOT_IN_STATEMENTS' THEN json_object('status', order_status, 'reference', reference,
                    'coverage', coverage_date, 'grace_day', grace_day, 'grace', grace)
                WHEN 'CIP_CLOSED' THEN json_object('cip', latest_cip, 'status', latest_status)
                WHEN 'CIP_EXPIRED_BEFORE_COVERAGE' THEN json_object('cip', latest_cip, 'expiry', fmt_lima(latest_expiry),
                    'coverage', fmt_lima(coverage_at))
                WHEN 'DUPLICATE_REFERENCE' THEN json_object('reference', reference, 'owner', first_order_id)
                WHEN 'WITHIN_GRACE' THEN json_object('status', order_status, 'grace_day', grace_day, 'coverage', coverage_date)
                WHEN 'NO_CIP' THEN json_object('reference', reference)
                WHEN 'CIP_PENDING' THEN json_object('cip', latest_cip, 'status', latest_status)
                ELSE json_object()  -- CANCELLED_UNPAID
            END,
            -- what follows the sentence; a NULL leaves its key out
            json_object(
                'paid_count', CASE WHEN paid_count > 1 THEN paid_count END,
                'cips', all_cips,
                'order_cip', CASE WHEN order_cip <> coalesce(paid_cip, latest_cip, '') THEN order_cip END)
        ) END AS evidence_args
    FROM primary_coded
),
-- The paid CIPs of references paid more than once, ranked (a small set).
repaid AS (
    SELECT c.*,
        row_number() OVER (PARTITION BY c.store_id, c.reference ORDER BY c.date_payment, c.cip) AS paid_rank,
        count(*) OVER (PARTITION BY c.store_id, c.reference) AS paid_count
    FROM multi_cips AS c
    WHERE c.status = 'paid'
    QUALIFY count(*) OVER (PARTITION BY c.store_id, c.reference) > 1
),
duplicate_items AS (
    SELECT
        o.store_id, o.business_date, o.reference, o.order_id, p.cip,
        'DUPLICATE_PAYMENT' AS status, 'PAID_AGAIN' AS reason,
        o.currency AS order_currency, CAST(NULL AS BIGINT) AS order_total_cents,
        p.currency AS paid_currency, p.amount_cents AS paid_amount_cents,
        p.amount_cents AS difference_cents,
        'PAID_AGAIN' AS evidence_code,
        json_object('order', o.order_id, 'total', fmt_money(o.total_cents, o.currency), 'first', g.first_paid.cip,
            'first_at', fmt_lima(g.first_paid.date_payment), 'cip', p.cip, 'paid', fmt_money(p.amount_cents, p.currency),
            'at', fmt_lima(p.date_payment), 'rank', p.paid_rank, 'count', p.paid_count) AS evidence_args,
        p.date_payment AS paid_at
    FROM repaid AS p
    JOIN multi_groups AS g ON g.store_id = p.store_id AND g.reference = p.reference
    JOIN owned_orders AS o ON o.store_id = p.store_id AND o.reference = p.reference
    WHERE p.paid_rank > 1 AND o.is_owner
),
-- Paid CIPs of the window's Lima dates whose reference matches no PagoEfectivo order of the store,
-- or that carry no reference at all.
orphan_cips AS (
    SELECT * FROM reference_cips
    WHERE order_count = 0 AND status = 'paid' AND in_window(store_id, payment_date)
),
other_method_orders AS (
    SELECT o.store_id, o.reference, min(o.order_id) AS order_id, min(o.payment_method) AS payment_method
    FROM orders AS o
    SEMI JOIN orphan_cips AS r ON r.store_id = o.store_id AND r.reference = o.reference
    WHERE NOT o.is_pagoefectivo AND in_stores(o.store_id)
    GROUP BY o.store_id, o.reference
),
orphan_items AS (
    SELECT
        p.store_id, p.payment_date AS business_date, p.reference, m.order_id, p.cip,
        'ORPHAN_PAYMENT' AS status,
        CASE WHEN p.reference IS NULL THEN 'NO_REFERENCE' WHEN m.order_id IS NOT NULL THEN 'ORDER_PAID_OTHER_METHOD' ELSE 'NO_ORDER' END AS reason,
        CAST(NULL AS VARCHAR) AS order_currency, CAST(NULL AS BIGINT) AS order_total_cents,
        p.currency AS paid_currency, p.amount_cents AS paid_amount_cents,
        p.amount_cents AS difference_cents,
        reason AS evidence_code,
        CASE WHEN p.reference IS NULL THEN json_object('cip', p.cip, 'paid', fmt_money(p.amount_cents, p.currency),
            'at', fmt_lima(p.date_payment))
        ELSE json_object('cip', p.cip, 'code', p.transaction_code, 'paid', fmt_money(p.amount_cents, p.currency),
            'at', fmt_lima(p.date_payment), 'order', m.order_id, 'method', m.payment_method, 'store', p.store_id,
            'reference', p.reference) END AS evidence_args,
        p.date_payment AS paid_at
    FROM orphan_cips AS p
    LEFT JOIN other_method_orders AS m ON m.store_id = p.store_id AND m.reference = p.reference
),
items AS (
    SELECT * FROM primary_items
    UNION ALL BY NAME SELECT * FROM duplicate_items
    UNION ALL BY NAME SELECT * FROM orphan_items
),
-- Refunds paid out for the item's CIP (refunds feature): shown on the item they settle.
paid_refunds AS (
    SELECT store_id, cip, CAST(sum(amount_cents) AS BIGINT) AS refunded_cents
    FROM refunds
    WHERE status = 'paid'
    GROUP BY store_id, cip
)
SELECT
    items.store_id, business_date, reference, order_id, items.cip, items.status, items.reason,
    order_currency, order_total_cents, paid_currency, paid_amount_cents, difference_cents,
    -- Whether a status and reason is a refund candidate is the status catalog's to say (reconciliation/catalog.py).
    coalesce(k.refund_candidate, FALSE) AS refund_candidate, paid_at,
    CAST(NULL AS VARCHAR) AS evidence_detail,  -- the evidence as text: only rows written by earlier versions have it
    coalesce(r.refunded_cents, 0) AS refunded_cents,
    evidence_code, evidence_args,
    -- Provisional until the store's statements reach a later day: the day's CIPs may still change
    -- (an hourly pull of today, a statement not in yet). A later statement restates it as final.
    coalesce(items.business_date >= cov.coverage_date, TRUE) AS provisional
FROM items
LEFT JOIN paid_refunds AS r
    ON r.store_id = items.store_id AND r.cip = CASE WHEN items.paid_amount_cents IS NOT NULL THEN items.cip END
LEFT JOIN statement_coverage AS cov ON cov.store_id = items.store_id
LEFT JOIN status_catalog AS k ON k.status = items.status AND k.reason IS NOT DISTINCT FROM items.reason
