-- Refunds requested by people in landing/refunds/<store_id>/*.csv, the latest version of each
-- (store_id, refund_id). Refund ids are qualified with the store: two stores may both file `R-1`.
-- A plain SELECT: run it in the DuckDB shell to see what the next intake would read.
SELECT
    store_id || '-' || refund_id AS refund_id,
    refund_id AS request_id,
    store_id,
    order_id,
    cip,
    amount_cents,
    upper(currency) AS currency,
    reason,
    'request' AS source,
    requested_by,
    requested_at,
    beneficiary_document,
    beneficiary_account,
    'Requested in landing/' || file || ' line ' || CAST(line AS VARCHAR) AS origin,
    file AS landing_file
FROM refund_request_rows
QUALIFY row_number() OVER (PARTITION BY store_id, refund_id ORDER BY file_seq DESC, line DESC) = 1
ORDER BY requested_at, refund_id
