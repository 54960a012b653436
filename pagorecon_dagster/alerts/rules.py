"""Alerts of a store x day window: each kind is one SQL file beside this module (a plain SELECT a
person can run in the DuckDB shell after `SET VARIABLE ...`); this module binds the window and
keeps the `alerts` table to one row per kind, store and day.

A rerun updates an alert in place: same content keeps `delivered_at` (nothing new to say); new
content is delivered again. An alert whose condition cleared is deleted while undelivered, and
marked `resolved_at` once delivered (the resolution is delivered in turn)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from pagorecon_dagster.config import Settings
from pagorecon_dagster.reconciliation.models import Window
from pagorecon_dagster.warehouse.duckdb import atomically, model_sql, set_variables

# Kinds computed per store x day partition, in the order a person reads them.
PARTITION_KINDS = (
    "STATEMENT_MISSING",
    "NOTIFICATION_MISMATCH",
    "NOTIFICATION_CONFLICT",
    "UNRECONCILED_HIGH",
    "REFUND_RATE_HIGH",
    "REFUND_OVERDUE",
    "FX_RATE_MISSING",
    "VALIDATION_REJECTS",
)
RUN_FAILED = "RUN_FAILED"
# Raised by the report emails (delivery/) when a report could not be sent; alerts/report_emails.py.
REPORT_EMAIL_FAILED = "REPORT_EMAIL_FAILED"
CONTENT = ("severity", "value", "threshold", "message")


def rule_sql(kind: str) -> str:
    """The rule's model: `dbt_like_sql/alerts/<kind>.sql`."""
    return model_sql(f"alerts/{kind.lower()}")


def alert_id(kind: str, store_id: str | None, business_date: dt.date) -> str:
    return f"{kind}|{store_id or '*'}|{business_date.isoformat()}"


@dataclass(frozen=True)
class Changes:
    raised: int
    updated: int
    unchanged: int
    resolved: int
    withdrawn: int
    by_kind: dict[str, int]


def refresh(con: duckdb.DuckDBPyConnection, settings: Settings, window: Window, *,
            now: dt.datetime, today: dt.date) -> Changes:
    """Recompute every partition kind for the window and apply it to `alerts`, in one transaction
    (run again when it conflicts with another run's: another store's run refreshes `alerts` too)."""
    set_variables(con, {
        "stores": list(window.stores), "start_date": window.start, "end_date": window.end,
        "today": today, "now": now, **settings.alerts.model_dump(),
    })
    union = "\nUNION ALL\n".join(f"SELECT * FROM ({rule_sql(kind)})" for kind in PARTITION_KINDS)
    in_window = (
        "(store_id IS NULL OR in_stores(store_id))"
        " AND business_date BETWEEN CAST(getvariable('start_date') AS DATE) AND CAST(getvariable('end_date') AS DATE)"
        f" AND kind IN ({', '.join(repr(k) for k in PARTITION_KINDS)})"
    )
    changed = " OR ".join(f"a.{c} IS DISTINCT FROM c.{c}" for c in CONTENT)

    def apply(con: duckdb.DuckDBPyConnection) -> Changes:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE alert_candidates AS
                SELECT kind || '|' || coalesce(store_id, '*') || '|' || CAST(business_date AS VARCHAR) AS alert_id, *
                FROM ({union})"""
        )
        _mask_messages(con)
        counts = dict(con.execute("SELECT kind, count(*) FROM alert_candidates GROUP BY kind").fetchall())
        unchanged = con.execute(
            f"""SELECT count(*) FROM alerts AS a JOIN alert_candidates AS c USING (alert_id)
                WHERE NOT ({changed}) AND a.resolved_at IS NULL"""
        ).fetchone()[0]
        updated = con.execute(
            f"""UPDATE alerts AS a SET severity = c.severity, value = c.value, threshold = c.threshold,
                    message = c.message, delivered_at = NULL, delivery_error = NULL, resolved_at = NULL
                FROM alert_candidates AS c
                WHERE a.alert_id = c.alert_id AND (({changed}) OR a.resolved_at IS NOT NULL)"""
        ).fetchone()[0]
        raised = con.execute(
            """INSERT INTO alerts (alert_id, kind, store_id, business_date, severity, value, threshold, message, created_at)
               SELECT alert_id, kind, store_id, business_date, severity, value, threshold, message, ?
               FROM alert_candidates AS c WHERE NOT EXISTS (SELECT 1 FROM alerts AS a WHERE a.alert_id = c.alert_id)""",
            [now],
        ).fetchone()[0]
        cleared = f"{in_window} AND alert_id NOT IN (SELECT alert_id FROM alert_candidates) AND resolved_at IS NULL"
        withdrawn = con.execute(f"DELETE FROM alerts WHERE {cleared} AND delivered_at IS NULL").fetchone()[0]
        resolved = con.execute(
            f"UPDATE alerts SET resolved_at = ?, delivered_at = NULL, delivery_error = NULL WHERE {cleared}", [now]
        ).fetchone()[0]
        con.execute("DROP TABLE alert_candidates")
        return Changes(raised, updated, unchanged, resolved, withdrawn, counts)

    return atomically(con, apply)


def _mask_messages(con: duckdb.DuckDBPyConnection) -> None:
    """Messages quote file errors and data: personal data is masked before the table holds them
    (a last line of defence; the rules themselves quote no personal fields)."""
    from pagorecon_dagster.alerts.delivery import mask_message

    rows = con.execute("SELECT alert_id, message FROM alert_candidates").fetchall()
    masked = [(mask_message(message), alert_id) for alert_id, message in rows if message and mask_message(message) != message]
    if masked:
        con.executemany("UPDATE alert_candidates SET message = ? WHERE alert_id = ?", masked)
