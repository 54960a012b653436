"""Numbered changes to existing warehouses, applied once each in order when the warehouse is opened
for writing and recorded in `schema_migrations` (warehouse/duckdb.py, apply_migrations).
`NNNN_name.sql` holds statements; `NNNN_name.py` a `migrate(con)` function for data. Each runs in
the transaction that records it, and leaves a warehouse that does not need it as it is."""
