"""Delivering alerts: always to the log, and to the `AlertChannel`'s webhook when it has one. A
delivery that fails stays undelivered with its `delivery_error` and is tried again (the job's
RetryPolicy, then a later run): never lost. Messages are masked (emails, document numbers,
accounts); run ids, ISO dates and times stay readable."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import duckdb

from pagorecon_dagster.alerts.channel import AlertChannel, DeliveryFailed
from pagorecon_dagster.core.masking import mask_text

# Run ids stay readable: mask_text would take a run of their dash-grouped digits for an account.
# It already leaves ISO dates and times alone; they are kept here too.
_NOT_PERSONAL = re.compile(
    r"(\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?)"
)
BATCH = 50  # alerts per run: a backlog drains over a few runs, each holding the warehouse briefly

PENDING_SQL = f"""
    SELECT alert_id, kind, store_id, business_date, severity, value, threshold, message, resolved_at
    FROM alerts WHERE delivered_at IS NULL
    ORDER BY created_at, alert_id LIMIT {BATCH}
"""
ACK_SQL = """
    UPDATE alerts SET delivered_at = ?, delivery_error = NULL
    WHERE alert_id = ? AND delivered_at IS NULL AND message = ? AND resolved_at IS NOT DISTINCT FROM ?
"""
FAIL_SQL = "UPDATE alerts SET delivery_error = ? WHERE alert_id = ? AND delivered_at IS NULL"


@dataclass(frozen=True)
class PendingAlert:
    alert_id: str
    kind: str
    store_id: str | None
    business_date: dt.date | None
    severity: str
    value: str | None
    threshold: str | None
    message: str
    resolved_at: dt.datetime | None

    def text(self) -> str:
        """One line a person reads in Slack or the log, personal data masked."""
        where = " ".join(x for x in (self.store_id, self.business_date.isoformat() if self.business_date else None) if x)
        head = f"RESOLVED {self.kind}" if self.resolved_at else f"[{self.severity}] {self.kind}"
        measure = f" (value {self.value}, threshold {self.threshold})" if self.value and self.threshold and not self.resolved_at else ""
        tail = " — condition cleared on rerun." if self.resolved_at else ""
        return mask_message(f"pagorecon {head} {where}: {self.message}{measure}{tail}")


def mask_message(text: str) -> str:
    """mask_text (emails, long digit runs) on everything but ISO dates, times and run ids."""
    parts = _NOT_PERSONAL.split(text)
    return "".join(part if index % 2 else mask_text(part) for index, part in enumerate(parts))


@dataclass
class DeliveryReport:
    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def deliver_pending(connect: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
                    log: Callable[[str], None], channel: AlertChannel, *,
                    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)) -> DeliveryReport:
    """Read undelivered alerts, deliver each once with the warehouse closed (HTTP can be slow),
    then record each outcome. An alert whose content changed meanwhile stays undelivered for next time."""
    with connect() as con:
        pending = [PendingAlert(*row) for row in con.execute(PENDING_SQL).fetchall()]
    report = DeliveryReport()
    outcomes: list[tuple[PendingAlert, dt.datetime | None, str | None]] = []
    for alert in pending:
        text = alert.text()
        log(text)
        try:
            channel.send(text)
            outcomes.append((alert, now(), None))
            report.delivered.append(alert.alert_id)
        except DeliveryFailed as exc:
            error = f"{now().isoformat(timespec='seconds')} {exc}"
            outcomes.append((alert, None, error))
            report.failed[alert.alert_id] = error
    if outcomes:
        with connect() as con:
            for alert, delivered_at, error in outcomes:
                if delivered_at is not None:
                    con.execute(ACK_SQL, [delivered_at, alert.alert_id, alert.message, alert.resolved_at])
                else:
                    con.execute(FAIL_SQL, [error, alert.alert_id])
    return report
