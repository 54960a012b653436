-- One alert per kind, store and day: a rerun updates it, never duplicates it.
CREATE TABLE IF NOT EXISTS alerts (
    alert_id       VARCHAR PRIMARY KEY,   -- kind|store_id|business_date (store '*' for none); RUN_FAILED|run_id
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
