-- The warehouse as it is now, for a new warehouse (idempotent DDL, applied when it changes). A change
-- to an existing table is also a numbered migration in migrations/, which upgrades older warehouses
-- once (warehouse/duckdb.py, apply_migrations; docs/operations.md, Tables).
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       VARCHAR NOT NULL,      -- NNNN_name of migrations/NNNN_name.sql or .py
    applied_at TIMESTAMPTZ NOT NULL
);

-- Numbers handed out once each (DuckLake has no sequences): one row per counter, seeded with the
-- schema; taking a number rewrites the row, so two takers conflict and one runs again
-- (warehouse/duckdb.py, next_value).
CREATE TABLE IF NOT EXISTS counters (
    name  VARCHAR NOT NULL,   -- file_seq | audit_turns (warehouse/duckdb.py, COUNTERS)
    value BIGINT NOT NULL     -- the last number handed out
);

-- Warehouse tables that are written row by row. Model outputs (orders, payments, fx_rates,
-- recon_items, recon_daily_summary) are created from `dbt_like_sql/` with the same columns.

CREATE TABLE IF NOT EXISTS ingested_files (
    file             VARCHAR NOT NULL,   -- path under landing/
    sha256           VARCHAR NOT NULL,
    source           VARCHAR NOT NULL,   -- statements | orders | refunds | fx
    store_id         VARCHAR,
    file_seq         BIGINT,             -- application order: later files supersede earlier ones
    encoding         VARCHAR,
    rows_read        BIGINT NOT NULL,
    rows_loaded      BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    status           VARCHAR NOT NULL,   -- loaded | failed
    error            VARCHAR,
    ingested_at      TIMESTAMPTZ NOT NULL,
    run_id           VARCHAR
);

CREATE TABLE IF NOT EXISTS quarantine (
    source   VARCHAR NOT NULL,
    store_id VARCHAR,
    file     VARCHAR NOT NULL,
    line     BIGINT NOT NULL,
    raw      VARCHAR NOT NULL,   -- the row as read, JSON {column: value}
    errors   VARCHAR NOT NULL,   -- every problem found, "column: problem; ..."
    file_seq BIGINT
);

CREATE TABLE IF NOT EXISTS statement_rows (
    store_id             VARCHAR NOT NULL,
    cip                  VARCHAR NOT NULL,
    transaction_code     VARCHAR,            -- NULL when the CIP carried none
    reference            VARCHAR,            -- normalized transaction_code; NULL when there is none
    operation_number     VARCHAR,
    status               VARCHAR NOT NULL,   -- paid | pending | expired | deleted | reversed
    currency             VARCHAR NOT NULL,
    amount_cents         BIGINT NOT NULL,
    commission_cents     BIGINT,
    igv_cents            BIGINT,
    date_creation        TIMESTAMPTZ,
    date_expiry          TIMESTAMPTZ,
    date_payment         TIMESTAMPTZ,
    payment_date         DATE,               -- Lima date of date_payment
    creation_date        DATE,               -- Lima date of date_creation
    channel              VARCHAR,
    user_document_type   VARCHAR,
    user_document_number VARCHAR,
    user_email           VARCHAR,
    origin               VARCHAR NOT NULL,   -- csv | cip_search | notification
    file                 VARCHAR NOT NULL,
    file_seq             BIGINT NOT NULL,
    line                 BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS order_rows (
    store_id          VARCHAR NOT NULL,
    order_id          VARCHAR NOT NULL,   -- the reference_field value as exported (#1001)
    reference         VARCHAR NOT NULL,   -- normalized: trimmed, no leading '#', upper-case
    source_order_id   VARCHAR,            -- canonical order_id / Shopify Id
    created_at        TIMESTAMPTZ NOT NULL,
    business_date     DATE NOT NULL,      -- Lima date of created_at
    status            VARCHAR NOT NULL,   -- pending | paid | cancelled | refunded
    store_status      VARCHAR,            -- as exported (Shopify Financial Status)
    currency          VARCHAR NOT NULL,
    total_cents       BIGINT NOT NULL,
    discount_cents    BIGINT,
    payment_method    VARCHAR,
    is_pagoefectivo   BOOLEAN NOT NULL,
    cip               VARCHAR,
    customer_email    VARCHAR,
    customer_document VARCHAR,
    line_items        BIGINT NOT NULL,
    file              VARCHAR NOT NULL,
    file_seq          BIGINT NOT NULL,
    line              BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS fx_rate_rows (
    date     DATE NOT NULL,
    currency VARCHAR NOT NULL,
    buy      DECIMAL(12, 6) NOT NULL,
    sell     DECIMAL(12, 6) NOT NULL,
    file     VARCHAR NOT NULL,
    file_seq BIGINT NOT NULL,
    line     BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS refund_request_rows (
    store_id             VARCHAR NOT NULL,
    refund_id            VARCHAR NOT NULL,
    order_id             VARCHAR NOT NULL,
    cip                  VARCHAR NOT NULL,
    amount_cents         BIGINT NOT NULL,
    currency             VARCHAR NOT NULL,
    reason               VARCHAR NOT NULL,
    requested_at         TIMESTAMPTZ NOT NULL,
    requested_by         VARCHAR NOT NULL,
    beneficiary_document VARCHAR NOT NULL,
    beneficiary_account  VARCHAR,
    file                 VARCHAR NOT NULL,
    file_seq             BIGINT NOT NULL,
    line                 BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS business_calendar (
    day              DATE NOT NULL,
    is_business_day  BOOLEAN NOT NULL,
    business_day_seq BIGINT NOT NULL
);

-- How far each latest-version table (orders, payments) has read its raw rows: the next refresh
-- reads only rows of later files (warehouse/duckdb.py, refresh_latest). `raw_rows` counts the raw
-- rows of the files applied; if that count changes, the table is rebuilt whole. The row of
-- `reference_counts` holds only its SQL's fingerprint (file_seq and raw_rows 0): a full rebuild of
-- orders or payments deletes it, so the next refresh counts every reference again.
CREATE TABLE IF NOT EXISTS current_state_marks (
    model       VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,   -- sha256 of the model's SQL and its raw table's columns
    file_seq    BIGINT NOT NULL,    -- the last file applied
    raw_rows    BIGINT NOT NULL     -- raw rows of files up to file_seq when it was applied
);

-- References that need more than a one-to-one match (dbt_like_sql/reference_counts.sql; their CIPs
-- go to `reference_cips`, created by the first refresh with the columns of `payments`), and the
-- references whose orders or CIPs changed since they were last counted: refreshing orders or
-- payments adds to `touched_references` in the same transaction, refreshing `reference_counts`
-- recounts those and empties it (reconciliation/models.py, refresh_reference_counts).
CREATE TABLE IF NOT EXISTS reference_counts (
    store_id    VARCHAR NOT NULL,
    reference   VARCHAR NOT NULL,
    order_count BIGINT NOT NULL,      -- PagoEfectivo orders with this reference
    cip_count   BIGINT NOT NULL       -- CIPs with this reference, whatever their state
);
CREATE TABLE IF NOT EXISTS touched_references (
    store_id  VARCHAR NOT NULL,
    reference VARCHAR              -- NULL: the store's CIPs without a reference
);

-- The store x Lima days each loaded landing file may change (dbt_like_sql/changed_days/<source>.sql),
-- written with the file's rows in one transaction (ingestion/loader.py); the landing sensor
-- requests reconcile runs for them (docs/operations.md, The landing sensor).
CREATE TABLE IF NOT EXISTS changed_days (
    file_seq      BIGINT NOT NULL,   -- the file (ingested_files.file_seq)
    store_id      VARCHAR NOT NULL,
    business_date DATE NOT NULL
);

-- Every fetch of the SBS rates from the BCRP statistics API by the hourly sync
-- (orchestration/hourly.py): FX_RATE_MISSING reads the failures, and which days the feed covers.
CREATE TABLE IF NOT EXISTS fx_fetches (
    fetched_at  TIMESTAMPTZ NOT NULL,
    start_date  DATE NOT NULL,
    end_date    DATE NOT NULL,
    status      VARCHAR NOT NULL,   -- ok | failed
    rates       INTEGER NOT NULL,   -- days with a buy and a sell rate
    file        VARCHAR,            -- the landing file, relative to landing/ (NULL: nothing landed)
    error       VARCHAR
);

-- The reconciled items as stored (dbt_like_sql/recon_item_rows.sql); `recon_items` is the view
-- over them that everyone reads (dbt_like_sql/recon_items.sql), created by the first reconciliation.
-- Partitioned by store (below): a run of one store rewrites only that store's files, so runs of
-- different stores commit at the same time without conflicting.
CREATE TABLE IF NOT EXISTS recon_item_rows (
    store_id          VARCHAR NOT NULL,
    business_date     DATE NOT NULL,
    reference         VARCHAR,
    order_id          VARCHAR,
    cip               VARCHAR,
    status            VARCHAR NOT NULL,
    reason            VARCHAR,
    order_currency    VARCHAR,
    order_total_cents BIGINT,
    paid_currency     VARCHAR,
    paid_amount_cents BIGINT,
    difference_cents  BIGINT,
    refund_candidate  BOOLEAN NOT NULL,
    paid_at           TIMESTAMPTZ,        -- when the item's CIP was paid
    evidence_detail   VARCHAR,  -- the evidence as text, only on rows written before evidence_code
    refunded_cents    BIGINT NOT NULL,
    -- The evidence as a message code and its values (JSON), rendered in every language from
    -- reconciliation/evidence_catalog.py; a plain match stores no values (they are the row's columns).
    evidence_code     VARCHAR,
    evidence_args     JSON,
    -- The store's statements do not reach past the item's day yet: it may still change.
    provisional       BOOLEAN
);

-- Formatting for evidence a person reads: `PEN 1234.50`, Lima wall-clock time.
-- Céntimos print through an exact DECIMAL(18, 2) (faster than formatting the two parts; benchmarks/README.md);
-- amounts beyond its 16 integer digits take the long way, so every BIGINT prints.
CREATE OR REPLACE MACRO fmt_money(cents, currency) AS
    coalesce(currency, '?') || ' ' || coalesce(
        CAST(TRY_CAST(cents AS DECIMAL(18, 0)) * 0.01 AS VARCHAR),
        CASE WHEN cents < 0 THEN '-' ELSE '' END
        || CAST(abs(CAST(cents AS HUGEINT)) // 100 AS VARCHAR) || '.' || lpad(CAST(abs(CAST(cents AS HUGEINT)) % 100 AS VARCHAR), 2, '0'));
-- Lima is UTC-5 all year: a fixed offset is exact and much cheaper than a zone lookup per row.
CREATE OR REPLACE MACRO fmt_lima(ts) AS strftime(make_timestamp(epoch_us(ts) - 18000000000), '%Y-%m-%d %H:%M') || ' Lima';
CREATE OR REPLACE MACRO fmt_decimal(x) AS
    CASE WHEN contains(CAST(x AS VARCHAR), '.') THEN rtrim(rtrim(CAST(x AS VARCHAR), '0'), '.') ELSE CAST(x AS VARCHAR) END;

-- The run's window: stores x Lima dates, bound with SET VARIABLE stores / start_date / end_date.
-- The range test comes first: DuckLake and Parquet skip other stores' files and row groups on a
-- comparison with constants, never on list_contains (benchmarks/README.md, Figures behind the SQL).
CREATE OR REPLACE MACRO in_stores(store) AS
    store BETWEEN list_min(CAST(getvariable('stores') AS VARCHAR[])) AND list_max(CAST(getvariable('stores') AS VARCHAR[]))
    AND list_contains(CAST(getvariable('stores') AS VARCHAR[]), store);
CREATE OR REPLACE MACRO in_window(store, day) AS
    in_stores(store)
    AND day BETWEEN CAST(getvariable('start_date') AS DATE) AND CAST(getvariable('end_date') AS DATE);

-- The status rules that depend on how far the statements reach (docs/reconciliation.md, Rules),
-- stated once: recon_item_rows.sql applies them, changed_days/statements.sql finds what moving coverage changes.
-- The grace day of each Lima day: the `grace`-th business day after it.
CREATE OR REPLACE MACRO grace_days(grace) AS TABLE
    SELECT d.day AS business_date, g.day AS grace_day
    FROM business_calendar AS d
    JOIN business_calendar AS g ON g.is_business_day AND g.business_day_seq = d.business_day_seq + grace;
-- An order marked paid with no paid CIP is missing its payment once the statements cover its grace day.
CREATE OR REPLACE MACRO covers_grace_day(coverage_date, grace_day) AS coverage_date >= grace_day;
-- An unpaid CIP has expired once the statements reach past its expiry.
CREATE OR REPLACE MACRO expired_by(expiry, coverage_at) AS expiry < coverage_at;

-- What each `pagorecon retention --apply` (or monthly `retention` run) removed or archived, one row
-- per landing file or table (pagorecon_dagster/retention.py; docs/operations.md, Retention).
CREATE TABLE IF NOT EXISTS retention_runs (
    run_id     VARCHAR NOT NULL,
    ran_at     TIMESTAMPTZ NOT NULL,
    day        DATE NOT NULL,        -- the Lima date the periods were counted back from
    by_user    VARCHAR NOT NULL,     -- the operating-system account, or the Dagster run
    data_class VARCHAR NOT NULL,     -- the `retention:` key: landing_files, raw_rows, audit_log, ...
    target     VARCHAR NOT NULL,     -- landing/<path>, or the table
    cutoff     DATE NOT NULL,        -- the first Lima day kept
    action     VARCHAR NOT NULL,     -- archive | delete | summarise
    items      BIGINT NOT NULL,      -- files, rows, refunds or audit entries
    detail     VARCHAR               -- refund ids; the audit entries summarised
);

-- Every report version emailed to a recipient, once: the key is checked and written `sending`
-- before the message goes out and turned `sent` after (delivery/send.py). A row left `sending`
-- (a crash in between) is never re-sent by itself: it is at most once, and the operator decides.
CREATE TABLE IF NOT EXISTS report_emails (
    recipient   VARCHAR NOT NULL,
    report      VARCHAR NOT NULL,      -- the report's path under reports/, like all_stores/2026-07/all_stores_2026-07-14
    sha256      VARCHAR NOT NULL,      -- of the version sent: its HTML, CSV and XLSX as rendered for this recipient
    language    VARCHAR NOT NULL,
    files       VARCHAR NOT NULL,      -- attach | link
    archived    VARCHAR NOT NULL,      -- the version's files under archive/reports/, without suffix
    subject     VARCHAR NOT NULL,
    status      VARCHAR NOT NULL,      -- sending | sent
    started_at  TIMESTAMPTZ NOT NULL,
    sent_at     TIMESTAMPTZ,
    run_id      VARCHAR
);
