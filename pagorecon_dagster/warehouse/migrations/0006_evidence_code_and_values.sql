-- Evidence as a message code and its values (reconciliation/evidence_catalog.py). Rows written
-- before keep their sentence in evidence_detail; a plain match, which stored none, gets its code.
ALTER TABLE recon_item_rows ADD COLUMN IF NOT EXISTS evidence_code VARCHAR;
ALTER TABLE recon_item_rows ADD COLUMN IF NOT EXISTS evidence_args JSON;
UPDATE recon_item_rows SET evidence_code = 'PAID_IN_FULL' WHERE evidence_code IS NULL AND evidence_detail IS NULL;
