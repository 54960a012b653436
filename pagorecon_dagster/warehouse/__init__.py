"""The DuckDB warehouse: its tables, its connection, and the runner of `dbt_like_sql/` models."""
