"""Sending a run's reports to their recipients, each version at most once.

Per recipient, a report version is the report rendered in the recipient's language over the
recipient's stores, identified by (recipient, report, sha256 of its files). The step:
1. reads the reports from the warehouse, keeps each version in the archive, and leaves out every
   version `report_emails` already holds for that recipient (sent, or `sending`: see 3);
2. records the rest as `sending` (one transaction, which reads `report_emails` again and takes the
   `email_turns` counter's turn: two runs sending at once conflict, and the one that runs again
   leaves out what the other recorded), then, with the warehouse closed, hands each to the mailer;
3. records each outcome: `sent`; or, when the server refused it, removes its row so a retry or a
   later run sends it, and raises a REPORT_EMAIL_FAILED alert.
At most once, not at least once: a crash between the hand-over and step 3 leaves the row
`sending`, and that version is not sent again by itself (the run says so; delete the row to send
it again). The one duplicate left possible is a connection lost after the server took the message
but before it said so: the row is removed as failed and a retry sends it a second time."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import duckdb

from pagorecon_dagster.alerts.report_emails import raise_email_failure, resolve_email_failures
from pagorecon_dagster.config import EmailRecipient, Settings
from pagorecon_dagster.core.masking import mask_email
from pagorecon_dagster.delivery.archive import Version, archive_version
from pagorecon_dagster.delivery.mailer import Mailer, SendFailed
from pagorecon_dagster.delivery.message import build_message
from pagorecon_dagster.reports.content import Report
from pagorecon_dagster.warehouse.duckdb import EMAIL_TURNS, atomically, next_value

SENDING, SENT = "sending", "sent"
FILE_SENDER = "pagorecon@localhost"  # `delivery: file` needs no sender of its own

BuildReports = Callable[[Settings, duckdb.DuckDBPyConnection, Any], list[Report]]
Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


@dataclass(frozen=True)
class Due:
    """One report a partition key stands for: its build key, store (None: every store), date and path."""

    key: Any
    store_id: str | None
    day: dt.date       # the date its alert is filed under
    path: str


@dataclass(frozen=True)
class Outgoing:
    recipient: EmailRecipient
    version: Version
    due: Due


@dataclass
class Outcome:
    sent: list[Outgoing] = field(default_factory=list)
    already_sent: int = 0
    unconfirmed: list[tuple[str, str]] = field(default_factory=list)   # (masked recipient, report) left `sending`
    failed: dict[tuple[str, str], str] = field(default_factory=dict)  # (masked recipient, report) -> error


def _language(settings: Settings, recipient: EmailRecipient) -> str:
    return recipient.language or settings.report_language


def audiences(settings: Settings) -> dict[tuple[str, tuple[str, ...]], list[EmailRecipient]]:
    """Recipients who read the same version: same language, same stores."""
    groups: dict[tuple[str, tuple[str, ...]], list[EmailRecipient]] = {}
    for recipient in settings.email.recipients:
        stores = tuple(settings.store_ids) if recipient.stores == "all" else tuple(recipient.stores)
        groups.setdefault((_language(settings, recipient), stores), []).append(recipient)
    return groups


def plan(settings: Settings, con: duckdb.DuckDBPyConnection, build: BuildReports, dues: Sequence[Due]) -> list[Outgoing]:
    """Every (recipient, version) of `dues`, each version rendered and archived."""
    outgoing = []
    for (language, stores), recipients in audiences(settings).items():
        theirs = [d for d in dues if d.store_id is None or d.store_id in stores]
        if not theirs:
            continue
        seen_by = dataclasses.replace(settings, report_language=language,
                                      stores=tuple(s for s in settings.stores if s.id in stores))
        reports = {r.path: r for r in build(seen_by, con, [d.key for d in theirs])}
        for due in theirs:
            version = archive_version(reports[due.path], settings.archive)
            outgoing.extend(Outgoing(recipient, version, due) for recipient in recipients)
    return outgoing


def send_reports(settings: Settings, connect: Connect, mailer: Mailer, build: BuildReports, dues: Iterable[Due], *,
                 run_id: str, log: Callable[[str], None],
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)) -> Outcome:
    dues = list(dues)
    outcome = Outcome()
    sender = settings.email.from_address or FILE_SENDER
    if not dues or not settings.email.recipients:
        return outcome
    with connect() as con:
        candidates = plan(settings, con, build, dues)
        # built before any row is written: only the hand-over can fail between the two records
        messages = [(o, build_message(o.version, sender=sender, recipient=o.recipient.address,
                                      files=o.recipient.files, base_url=settings.email.link_base_url)) for o in candidates]

        def record_sending(con) -> list[tuple[Outgoing, EmailMessage]]:
            # The turn makes two runs recording at once conflict at commit: the one that runs again
            # reads the other's rows here and leaves those versions out (each is sent once).
            next_value(con, EMAIL_TURNS)
            recorded = dict(((r, p, s), status) for r, p, s, status in con.execute(
                "SELECT recipient, report, sha256, status FROM report_emails WHERE report IN (SELECT unnest(?))",
                [sorted({o.due.path for o in candidates})],
            ).fetchall())
            outcome.already_sent, outcome.unconfirmed = 0, []
            todo = []
            for o, message in messages:
                status = recorded.get((o.recipient.address, o.due.path, o.version.sha256))
                if status == SENT:
                    outcome.already_sent += 1
                elif status == SENDING:
                    outcome.unconfirmed.append((mask_email(o.recipient.address), o.due.path))
                else:
                    todo.append((o, message))
            if todo:
                started = [o for o, _ in todo]
                con.execute(
                    """INSERT INTO report_emails (recipient, report, sha256, language, files, archived, subject, status,
                                                  started_at, run_id)
                       SELECT unnest(?), unnest(?), unnest(?), unnest(?), unnest(?), unnest(?), unnest(?), ?, ?, ?""",
                    [[o.recipient.address for o in started], [o.due.path for o in started],
                     [o.version.sha256 for o in started], [o.version.report.language for o in started],
                     [o.recipient.files for o in started], [f"archive/reports/{o.version.base}" for o in started],
                     [o.version.report.title for o in started], SENDING, now(), run_id],
                )
            return todo

        todo = atomically(con, record_sending)
    results: list[tuple[Outgoing, dt.datetime | None, str | None]] = []
    for o, message in todo:
        who = mask_email(o.recipient.address)
        try:
            mailer.send(message)
            results.append((o, now(), None))
            outcome.sent.append(o)
            log(f"sent {o.due.path} ({o.version.report.language}, {o.version.sha256[:12]}) to {who}")
        except SendFailed as exc:
            results.append((o, None, str(exc)))
            outcome.failed[(who, o.due.path)] = str(exc)
            log(f"not sent: {o.due.path} to {who}: {exc}")
    if not results:
        return outcome

    def record_outcomes(con) -> None:
        # One statement each, whatever the number of emails: on the lake every statement that changes
        # rows costs a commit's work (365 emails: 83 s of row-by-row statements; benchmarks/README.md).
        sent = [(o, sent_at) for o, sent_at, _ in results if sent_at is not None]
        refused = [o for o, sent_at, _ in results if sent_at is None]
        if sent:
            con.execute(
                """UPDATE report_emails AS e SET status = $1, sent_at = s.sent_at
                   FROM (SELECT unnest(CAST($2 AS VARCHAR[])) AS recipient, unnest(CAST($3 AS VARCHAR[])) AS report,
                                unnest(CAST($4 AS VARCHAR[])) AS sha256, unnest(CAST($5 AS TIMESTAMPTZ[])) AS sent_at) AS s
                   WHERE e.recipient = s.recipient AND e.report = s.report AND e.sha256 = s.sha256""",
                [SENT, [o.recipient.address for o, _ in sent], [o.due.path for o, _ in sent],
                 [o.version.sha256 for o, _ in sent], [at for _, at in sent]],
            )
        if refused:
            con.execute(
                """DELETE FROM report_emails AS e
                   USING (SELECT unnest(CAST($1 AS VARCHAR[])) AS recipient, unnest(CAST($2 AS VARCHAR[])) AS report,
                                 unnest(CAST($3 AS VARCHAR[])) AS sha256) AS f
                   WHERE e.recipient = f.recipient AND e.report = f.report AND e.sha256 = f.sha256 AND e.status = $4""",
                [[o.recipient.address for o in refused], [o.due.path for o in refused],
                 [o.version.sha256 for o in refused], SENDING],
            )
        at = now()
        resolved = []
        for due in sorted({o.due for o, _, _ in results}, key=lambda d: d.path):
            errors = sorted({f"{mask_email(o.recipient.address)}: {e}" for o, _, e in results if o.due == due and e})
            if errors:
                raise_email_failure(con, due.store_id, due.day, due.path,
                                    f"report {due.path} not emailed to " + "; ".join(errors), at)
            else:
                resolved.append((due.store_id, due.day))
        resolve_email_failures(con, resolved, at)

    with connect() as con:
        atomically(con, record_outcomes)
    return outcome
