-- Refunds: one row per refund, its state machine in `status` (docs/refunds.md).
-- requested -> rejected | awaiting_approval | approved -> submitted -> paid | failed
-- Only pagorecon_dagster/refunds/state.py changes a status or a decision, and records each in audit_log.
CREATE TABLE IF NOT EXISTS refunds (
    refund_id            VARCHAR NOT NULL,      -- <store_id>-<request refund_id>, or auto-<store_id>-<cip>-<reason>
    store_id             VARCHAR NOT NULL,
    order_id             VARCHAR,
    cip                  VARCHAR NOT NULL,
    amount_cents         BIGINT NOT NULL,
    currency             VARCHAR NOT NULL,
    reason               VARCHAR NOT NULL,      -- request: as filed; proposal: DUPLICATE_PAYMENT | PAID_CANCELLED_ORDER | OVERPAID | ORDER_PAID_OTHER_METHOD
    source               VARCHAR NOT NULL,      -- request (landing/refunds) | reconciliation
    status               VARCHAR NOT NULL,
    rejection_reason     VARCHAR,               -- reason codes, comma-separated (docs/refunds.md)
    requested_by         VARCHAR NOT NULL,
    approved_by          VARCHAR,
    requested_at         TIMESTAMPTZ NOT NULL,
    approved_at          TIMESTAMPTZ,
    submitted_at         TIMESTAMPTZ,
    completed_at         TIMESTAMPTZ,
    provider_reference   VARCHAR,
    attempts             INTEGER NOT NULL DEFAULT 0,
    beneficiary_document VARCHAR,
    beneficiary_account  VARCHAR,
    request_id           VARCHAR,               -- the refund_id as filed in landing/refunds (NULL for proposals)
    rejection_detail     VARCHAR,               -- the rejection in words, for a person
    executor             VARCHAR,               -- api | payout_file, set when submitted
    payout_batch         VARCHAR,               -- payout_file: the batch file under archive/payouts/
    provider_status      VARCHAR,               -- last status the provider or bank reported
    last_error           VARCHAR,               -- last payout problem (masked), cleared on success
    requested_by_user    VARCHAR,               -- request: the approver account that dropped the file (never its approver)
    account_set_by       VARCHAR                -- the approver account that last set beneficiary_account (never its approver)
);

-- Every decision, append-only; each entry carries the hash of the previous one.
CREATE TABLE IF NOT EXISTS audit_log (
    seq        BIGINT NOT NULL,
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

-- Bank confirmations read from landing/refund_confirmations/*.csv, one row per line read, with
-- what pagorecon did with it. A file (path + sha256) is read once.
CREATE TABLE IF NOT EXISTS refund_confirmations (
    file           VARCHAR NOT NULL,   -- path under landing/
    sha256         VARCHAR NOT NULL,
    line           BIGINT NOT NULL,    -- 0: the file could not be read at all (see detail)
    refund_id      VARCHAR,
    status         VARCHAR,            -- paid | failed, as the bank reported
    amount_cents   BIGINT,
    currency       VARCHAR,
    bank_reference VARCHAR,
    executed_at    TIMESTAMPTZ,
    outcome        VARCHAR NOT NULL,   -- applied | already_applied | unknown_refund | not_submitted | amount_mismatch | currency_mismatch | bad_row | unreadable_file
    detail         VARCHAR,
    read_at        TIMESTAMPTZ NOT NULL
);

-- Audit entries removed by retention are summarised here (pagorecon_dagster/retention.py): the
-- chain continues from the last checkpoint, whose hash the next entry's prev_hash holds. Each
-- checkpoint is also sealed in archive/audit-anchor.log (docs/refunds.md, The audit log).
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    seq             BIGINT NOT NULL,      -- the last entry removed
    hash            VARCHAR NOT NULL,     -- that entry's hash: it vouches for every entry before it
    removed         BIGINT NOT NULL,      -- entries this checkpoint removed
    first_logged_at TIMESTAMPTZ,          -- the oldest and newest of them
    last_logged_at  TIMESTAMPTZ,
    sealed_at       TIMESTAMPTZ NOT NULL
);
