-- Warehouses made before a CIP could arrive without a reference.
ALTER TABLE statement_rows ALTER COLUMN transaction_code DROP NOT NULL;
ALTER TABLE statement_rows ALTER COLUMN reference DROP NOT NULL;
-- NULL: the store's CIPs without a reference, recounted together.
ALTER TABLE touched_references ALTER COLUMN reference DROP NOT NULL;
