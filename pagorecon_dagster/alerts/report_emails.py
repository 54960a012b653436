"""REPORT_EMAIL_FAILED alerts: one per report that could not be sent to one of its recipients
(alert_id `REPORT_EMAIL_FAILED|<store or *>|<report date>`), naming the report, the masked
recipients and the error. Resolved (and the resolution delivered) once a later attempt sends it."""

from __future__ import annotations

import datetime as dt

import duckdb

from pagorecon_dagster.alerts.delivery import mask_message
from pagorecon_dagster.alerts.rules import REPORT_EMAIL_FAILED, alert_id


def raise_email_failure(con: duckdb.DuckDBPyConnection, store_id: str | None, business_date: dt.date, report: str,
                        message: str, now: dt.datetime) -> None:
    """Insert the report's alert, or update it with this attempt's message (delivered again)."""
    key, text = alert_id(REPORT_EMAIL_FAILED, store_id, business_date), mask_message(message)
    updated = con.execute(
        """UPDATE alerts SET message = ?, value = ?, delivered_at = NULL, delivery_error = NULL, resolved_at = NULL
           WHERE alert_id = ? AND (message IS DISTINCT FROM ? OR resolved_at IS NOT NULL)""",
        [text, report, key, text],
    ).fetchone()[0]
    if not updated:
        con.execute(
            """INSERT INTO alerts (alert_id, kind, store_id, business_date, severity, value, threshold, message, created_at)
               SELECT ?, ?, ?, ?, 'critical', ?, NULL, ?, ? WHERE NOT EXISTS (SELECT 1 FROM alerts WHERE alert_id = ?)""",
            [key, REPORT_EMAIL_FAILED, store_id, business_date, report, text, now, key],
        )


def resolve_email_failure(con: duckdb.DuckDBPyConnection, store_id: str | None, business_date: dt.date,
                          now: dt.datetime) -> None:
    """The report went out: its open alert is resolved (an undelivered one is withdrawn)."""
    key = alert_id(REPORT_EMAIL_FAILED, store_id, business_date)
    con.execute("DELETE FROM alerts WHERE alert_id = ? AND resolved_at IS NULL AND delivered_at IS NULL", [key])
    con.execute("UPDATE alerts SET resolved_at = ?, delivered_at = NULL, delivery_error = NULL "
                "WHERE alert_id = ? AND resolved_at IS NULL", [now, key])
