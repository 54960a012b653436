"""Reconciliation per store and Lima date: the SQL models of `dbt_like_sql/`, run for a window."""
