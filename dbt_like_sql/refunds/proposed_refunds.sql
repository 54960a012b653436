-- Refunds the reconciliation proposes: one per recon item whose status and reason are a refund
-- candidate in `status_catalog` (reconciliation/catalog.py), for the money that item shows as
-- not owed (`difference_cents`: the excess of an overpayment, all of a duplicate payment, of a
-- paid cancelled order, of a payment for an order paid another way), back to the person who
-- paid that CIP (original route). The refund id is derived from store, CIP and the catalog's
-- refund reason, so proposing again proposes nothing new.
-- A plain SELECT: run it in the DuckDB shell to see what the next intake would propose.
WITH candidates AS (
    SELECT i.*, k.refund_reason
    FROM recon_items AS i
    JOIN status_catalog AS k ON k.status = i.status AND k.reason IS NOT DISTINCT FROM i.reason
    WHERE k.refund_candidate AND i.cip IS NOT NULL
      -- the same catalog as a filter, which DuckDB applies before the view writes evidence: only
      -- candidates get a sentence
      AND i.status IN (SELECT status FROM status_catalog WHERE refund_candidate)
)
SELECT
    'auto-' || c.store_id || '-' || c.cip || '-' || lower(c.refund_reason) AS refund_id,
    CAST(NULL AS VARCHAR) AS request_id,
    c.store_id,
    c.order_id,
    c.cip,
    c.difference_cents AS amount_cents,
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
