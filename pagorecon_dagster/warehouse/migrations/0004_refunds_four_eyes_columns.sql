-- Warehouses created before the four-eyes columns of refunds.
ALTER TABLE refunds ADD COLUMN IF NOT EXISTS requested_by_user VARCHAR;
ALTER TABLE refunds ADD COLUMN IF NOT EXISTS account_set_by VARCHAR;
