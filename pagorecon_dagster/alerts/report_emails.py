"""REPORT_EMAIL_FAILED alerts: one per report that could not be sent to one of its recipients
(alert_id `REPORT_EMAIL_FAILED|<store or *>|<report date>`), naming the report, the masked
recipients and the error. Resolved (and the resolution delivered) once a later attempt sends it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

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


def resolve_email_failures(con: duckdb.DuckDBPyConnection, reports: Iterable[tuple[str | None, dt.date]],
                           now: dt.datetime) -> None:
    """The reports (store or None, report date) went out: their open alerts are resolved (an
    undelivered one is withdrawn). Two statements whatever the number of reports: on the lake each
    statement that changes rows costs a commit's work, and a year's backfill sends hundreds."""
    keys = sorted({alert_id(REPORT_EMAIL_FAILED, store_id, day) for store_id, day in reports})
    if not keys:
        return
    con.execute("DELETE FROM alerts WHERE alert_id IN (SELECT unnest(?)) AND resolved_at IS NULL AND delivered_at IS NULL",
                [keys])
    con.execute("UPDATE alerts SET resolved_at = ?, delivered_at = NULL, delivery_error = NULL "
                "WHERE alert_id IN (SELECT unnest(?)) AND resolved_at IS NULL", [now, keys])
