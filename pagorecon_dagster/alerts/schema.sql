-- One alert per kind, store and day: a rerun updates it, never duplicates it.
CREATE TABLE IF NOT EXISTS alerts (
    alert_id       VARCHAR NOT NULL,      -- kind|store_id|business_date (store '*' for none); RUN_FAILED|run_id
    kind           VARCHAR NOT NULL,
    store_id       VARCHAR,
    business_date  DATE,
    severity       VARCHAR NOT NULL,      -- info | warning | critical
    value          VARCHAR,
    threshold      VARCHAR,
    message        VARCHAR NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    delivered_at   TIMESTAMPTZ,
    delivery_error VARCHAR,
    -- A delivered alert whose condition cleared on a rerun is kept, marked resolved (and the
    -- resolution is delivered in turn).
    resolved_at    TIMESTAMPTZ
);

-- The REFUND_OVERDUE rule, stated once: alerts/refund_overdue.sql raises its alerts from it and
-- `pagorecon status` counts the overdue refunds still unpaid. A refund approved (and not rejected)
-- has until the `days`-th Peru business day after the Lima day of approval; paid after that, or
-- not paid at all, it is overdue from the day after (`overdue_day`).
CREATE OR REPLACE MACRO overdue_refunds(days) AS TABLE
    WITH approved AS (
        SELECT r.refund_id, r.store_id, r.order_id, r.cip, r.amount_cents, r.currency, r.status,
            CAST(timezone('America/Lima', r.approved_at) AS DATE) AS approved_day,
            CAST(timezone('America/Lima', r.completed_at) AS DATE) AS completed_day
        FROM refunds AS r
        WHERE r.approved_at IS NOT NULL AND r.status <> 'rejected'
    ),
    due AS (
        SELECT a.*, deadline.day AS deadline
        FROM approved AS a
        JOIN business_calendar AS approval ON approval.day = a.approved_day
        JOIN business_calendar AS deadline
            ON deadline.is_business_day AND deadline.business_day_seq = approval.business_day_seq + days
    )
    SELECT *, CAST(deadline + INTERVAL 1 DAY AS DATE) AS overdue_day
    FROM due
    WHERE NOT (status = 'paid' AND completed_day <= deadline);
