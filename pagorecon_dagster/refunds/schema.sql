-- Refunds: one row per refund, its state machine in `status` (CONTRACT §3, refunds feature).
-- requested -> rejected | awaiting_approval | approved -> submitted -> paid | failed
CREATE TABLE IF NOT EXISTS refunds (
    refund_id            VARCHAR PRIMARY KEY,
    store_id             VARCHAR NOT NULL,
    order_id             VARCHAR,
    cip                  VARCHAR NOT NULL,
    amount_cents         BIGINT NOT NULL,
    currency             VARCHAR NOT NULL,
    reason               VARCHAR NOT NULL,
    source               VARCHAR NOT NULL,      -- request (landing/refunds) | reconciliation
    status               VARCHAR NOT NULL,
    rejection_reason     VARCHAR,
    requested_by         VARCHAR NOT NULL,
    approved_by          VARCHAR,
    requested_at         TIMESTAMPTZ NOT NULL,
    approved_at          TIMESTAMPTZ,
    submitted_at         TIMESTAMPTZ,
    completed_at         TIMESTAMPTZ,
    provider_reference   VARCHAR,
    attempts             INTEGER NOT NULL DEFAULT 0,
    beneficiary_document VARCHAR,
    beneficiary_account  VARCHAR
);

-- Every decision, append-only; each entry carries the hash of the previous one.
CREATE TABLE IF NOT EXISTS audit_log (
    seq        BIGINT PRIMARY KEY,
    logged_at  TIMESTAMPTZ NOT NULL,
    actor      VARCHAR NOT NULL,
    action     VARCHAR NOT NULL,
    entity     VARCHAR NOT NULL,
    entity_id  VARCHAR NOT NULL,
    before_state VARCHAR,  -- JSON
    after_state  VARCHAR,  -- JSON
    why        VARCHAR,
    prev_hash  VARCHAR NOT NULL,
    hash       VARCHAR NOT NULL
);
