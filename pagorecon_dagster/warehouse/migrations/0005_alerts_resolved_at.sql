-- Warehouses created before a delivered alert whose condition cleared was kept, marked resolved.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS resolved_at TIMESTAMPTZ;
