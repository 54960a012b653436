-- Refunds the reconciliation proposes: one per recon item flagged `refund_candidate`, for the
-- money that item shows as not owed, back to the person who paid that CIP (original route).
-- The refund id is derived from store, CIP and reason, so proposing again proposes nothing new.
-- A plain SELECT: run it in the DuckDB shell to see what the next intake would propose.
WITH candidates AS (
    SELECT i.*,
        CASE i.status
            WHEN 'AMOUNT_MISMATCH' THEN 'OVERPAID'                    -- the excess over the order total
            WHEN 'ORPHAN_PAYMENT' THEN 'ORDER_PAID_OTHER_METHOD'      -- the buyer paid twice
            ELSE i.status                                             -- DUPLICATE_PAYMENT, PAID_CANCELLED_ORDER: all of it
        END AS refund_reason
    FROM recon_items AS i
    WHERE i.refund_candidate AND i.cip IS NOT NULL
)
SELECT
    'auto-' || c.store_id || '-' || c.cip || '-' || lower(c.refund_reason) AS refund_id,
    CAST(NULL AS VARCHAR) AS request_id,
    c.store_id,
    c.order_id,
    c.cip,
    CASE WHEN c.status = 'AMOUNT_MISMATCH' THEN c.difference_cents ELSE c.paid_amount_cents END AS amount_cents,
    c.paid_currency AS currency,
    c.refund_reason AS reason,
    'reconciliation' AS source,
    'system:reconciliation' AS requested_by,
    CAST(NULL AS TIMESTAMPTZ) AS requested_at,   -- the moment of the proposal
    p.user_document_number AS beneficiary_document,
    CAST(NULL AS VARCHAR) AS beneficiary_account,
    'Proposed from recon item ' || c.status || coalesce(' ' || c.reason, '') || ' of ' || CAST(c.business_date AS VARCHAR)
        || ': ' || c.evidence AS origin
FROM candidates AS c
LEFT JOIN payments AS p ON p.store_id = c.store_id AND p.cip = c.cip
ORDER BY c.store_id, c.business_date, c.cip, c.refund_reason
