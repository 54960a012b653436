"""Retention (docs/operations.md, Retention): what is past its period in `pagorecon.yaml`'s
`retention:` section, listed by `pagorecon retention --dry-run`, archived or removed by `--apply`
and by the monthly `retention` job, each apply recorded in `retention_runs`.

One `plan` decides what goes; `apply` removes exactly what the plan lists, in one transaction,
so a dry run shows what an apply of the same day would do. Ages are Lima dates. Refunds that are
not final are never removed, and neither is a final refund whose origin (its request row, its
recon item, its CIP's statement rows) stays: a later run would take it in again. The audit chain
loses only a prefix, sealed by a checkpoint (refunds/audit.py), and only when it verifies."""

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb

from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.lima import LIMA_TZ
from pagorecon_dagster.ingestion.loader import retire_file
from pagorecon_dagster.pagoefectivo.webhook import NOTIFICATIONS_FOLDER
from pagorecon_dagster.refunds import audit, state
from pagorecon_dagster.resources import PagoreconHome
from pagorecon_dagster.warehouse.duckdb import atomically

RETENTION_JOB = "retention"
# Refunds that no longer move; every other status is still open, whatever its age.
FINAL_REFUND_STATUSES = tuple(s for s in state.STATUSES if s not in state.OPEN and s != state.REQUESTED)

# Rows removed by their Lima date: table -> the date of a row (NULL: never removed).
RAW_ROWS = {
    "statement_rows": "coalesce(payment_date, creation_date)",
    "order_rows": "business_date",
    "refund_request_rows": "CAST(requested_at AS DATE)",
    "fx_rate_rows": "date",
}
RESULT_ROWS = {
    "recon_item_rows": "business_date",
    "recon_daily_summary": "business_date",
}
# A quarantined row is dated by the first time its file was read.
QUARANTINE_DATE = "(SELECT CAST(min(f.ingested_at) AS DATE) FROM ingested_files AS f WHERE f.file = quarantine.file)"


@dataclass(frozen=True)
class Item:
    """One thing past its period: a landing file, the rows of a table, refunds, an audit prefix."""

    data_class: str   # the `retention:` key whose period it is past
    target: str       # landing/<path>, or a table
    cutoff: dt.date   # the first Lima day kept
    count: int
    action: str       # archive | delete | summarise
    detail: str = ""

    def line(self) -> str:
        return f"{self.data_class:<22} {self.action:<9} {self.count:>8,}  {self.target}" + (f"  ({self.detail})" if self.detail else "")


@dataclass
class Plan:
    today: dt.date
    items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refund_ids: list[str] = field(default_factory=list)
    audit_through: int = 0   # the last audit entry to remove (0: none)


def lima_today() -> dt.date:
    return dt.datetime.now(ZoneInfo(LIMA_TZ)).date()


def _count(con, table: str, where: str, params: list) -> int:
    return con.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]


def _exists(con, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_type = 'BASE TABLE' AND table_catalog = current_database()",
                            [table]).fetchone()[0])


def _row_tables(settings: Settings, today: dt.date) -> list[tuple[str, str, str, dt.date]]:
    """(data class, table, date of a row, cutoff) of every table whose rows are removed by date."""
    policy = settings.retention
    return ([("raw_rows", t, d, policy.raw_rows.cutoff(today)) for t, d in RAW_ROWS.items()]
            + [("reconciliation_results", t, d, policy.reconciliation_results.cutoff(today)) for t, d in RESULT_ROWS.items()]
            + [("quarantine", "quarantine", QUARANTINE_DATE, policy.quarantine.cutoff(today))])


def _landing_files(con, settings: Settings, today: dt.date) -> list[tuple[str, Path, dt.date]]:
    """(data class, file, cutoff) of every landing file first read before its class's cutoff;
    a file never read stays (the next run reads it)."""
    policy = settings.retention
    first_read = dict(con.execute(
        "SELECT file, CAST(min(ingested_at) AS DATE) FROM ingested_files WHERE status <> 'retired' GROUP BY file").fetchall())
    found = []
    landing = settings.landing
    for path in sorted(p for p in landing.rglob("*") if p.is_file()) if landing.exists() else []:
        relative = path.relative_to(landing).as_posix()
        webhook = NOTIFICATIONS_FOLDER in path.relative_to(landing).parts[2:-1]
        data_class, period = ("webhook_bodies", policy.webhook_bodies) if webhook else ("landing_files", policy.landing_files)
        cutoff = period.cutoff(today)
        if relative in first_read and first_read[relative] < cutoff:
            found.append((data_class, path, cutoff))
    return found


def plan(con: duckdb.DuckDBPyConnection, settings: Settings, today: dt.date) -> Plan:
    """Everything past its period on `today` (a Lima date); changes nothing."""
    result = Plan(today)
    for data_class, path, cutoff in _landing_files(con, settings, today):
        result.items.append(Item(data_class, f"landing/{path.relative_to(settings.landing).as_posix()}", cutoff, 1,
                                 settings.retention.landing_action))
    for data_class, table, day, cutoff in _row_tables(settings, today):
        if _exists(con, table) and (n := _count(con, table, f"{day} < ?", [cutoff])):
            result.items.append(Item(data_class, table, cutoff, n, "delete"))
    _plan_refunds_and_audit(con, settings, today, result)
    return result


def _plan_refunds_and_audit(con, settings: Settings, today: dt.date, result: Plan) -> None:
    policy = settings.retention
    refunds_cutoff, audit_cutoff = policy.refunds.cutoff(today), policy.audit_log.cutoff(today)
    check = audit.verify(con, audit.Anchor.of_home(settings.home), unaudited=state.UNAUDITED_COLUMNS, personal=state.PERSONAL_COLUMNS)
    if not check.ok:
        result.notes.append("the audit log does not verify (`pagorecon refunds verify-audit`): no refund and no audit "
                            "entry is removed until it does")
        return
    raw_cutoff, results_cutoff = policy.raw_rows.cutoff(today), policy.reconciliation_results.cutoff(today)
    # Final, past the period, audited, and nothing left that a later run would take it in again from.
    candidates = con.execute(
        f"""WITH latest AS (SELECT entity_id, max(seq) AS seq, max(logged_at) AS logged_at FROM audit_log
                            WHERE entity = 'refund' GROUP BY entity_id)
            SELECT r.refund_id, l.seq FROM refunds AS r JOIN latest AS l ON l.entity_id = r.refund_id
            WHERE list_contains(?, r.status)
              AND CAST(greatest(r.requested_at, r.approved_at, r.submitted_at, r.completed_at, l.logged_at) AS DATE) < ?
              AND NOT EXISTS (SELECT 1 FROM refund_request_rows AS q WHERE q.store_id = r.store_id AND q.refund_id = r.request_id
                              AND ({RAW_ROWS['refund_request_rows']} < ?) IS NOT TRUE)
              AND NOT EXISTS (SELECT 1 FROM statement_rows AS s WHERE s.store_id = r.store_id AND s.cip = r.cip
                              AND ({RAW_ROWS['statement_rows']} < ?) IS NOT TRUE)
              AND NOT EXISTS (SELECT 1 FROM recon_item_rows AS i WHERE i.store_id = r.store_id AND i.cip = r.cip
                              AND i.refund_candidate AND (i.business_date < ?) IS NOT TRUE)""",
        [list(FINAL_REFUND_STATUSES), refunds_cutoff, raw_cutoff, raw_cutoff, results_cutoff],
    ).fetchall()
    leaving = {refund_id for refund_id, _ in candidates}
    # The prefix of entries past the period that holds no staying refund's last audited state.
    first_young = con.execute("SELECT min(seq) FROM audit_log WHERE CAST(logged_at AS DATE) >= ?", [audit_cutoff]).fetchone()[0]
    last_seq = con.execute("SELECT max(seq) FROM audit_log").fetchone()[0] or 0
    staying = con.execute(
        "SELECT min(seq) FROM (SELECT entity_id, max(seq) AS seq FROM audit_log WHERE entity = 'refund' GROUP BY entity_id) "
        "WHERE NOT list_contains(CAST(? AS VARCHAR[]), entity_id)", [sorted(leaving)]).fetchone()[0]
    through = min(last_seq, (first_young or last_seq + 1) - 1, (staying or last_seq + 1) - 1)
    result.refund_ids = sorted(refund_id for refund_id, seq in candidates if seq <= through)
    if result.refund_ids:
        result.items.append(Item("refunds", "refunds", refunds_cutoff, len(result.refund_ids), "delete",
                                 ", ".join(result.refund_ids)))
    start = audit.latest_checkpoint(con)
    if through > start.seq:
        result.audit_through = through
        result.items.append(Item("audit_log", "audit_log", audit_cutoff, through - start.seq, "summarise",
                                 f"entries {start.seq + 1}..{through} into a sealed checkpoint"))


def apply(con: duckdb.DuckDBPyConnection, settings: Settings, today: dt.date, *, by: str) -> Plan:
    """Remove what `plan` lists for `today` and record it in `retention_runs`: the rows in one
    transaction (run again if its commit conflicts with another process's), then the landing
    files, each recorded as it goes."""
    done = plan(con, settings, today)
    run_id, now = str(uuid.uuid4()), dt.datetime.now(dt.timezone.utc)

    def record(item: Item) -> None:
        con.execute("INSERT INTO retention_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [run_id, now, today, by, item.data_class, item.target, item.cutoff, item.action, item.count, item.detail or None])

    def remove_rows(con: duckdb.DuckDBPyConnection):  # runs again whole if its commit conflicts
        checkpoint = None
        for item in done.items:
            if item.data_class in ("landing_files", "webhook_bodies"):
                continue
            if item.data_class == "refunds":
                con.execute("DELETE FROM refunds WHERE list_contains(?, refund_id)", [done.refund_ids])
            elif item.data_class == "audit_log":
                checkpoint = audit.seal_prefix(con, done.audit_through, now=now)
            else:
                day = next(d for c, t, d, _ in _row_tables(settings, today) if t == item.target)
                con.execute(f"DELETE FROM {item.target} WHERE {day} < ?", [item.cutoff])
            record(item)
        return checkpoint

    checkpoint = atomically(con, remove_rows)
    if checkpoint is not None:
        audit.Anchor.of_home(settings.home).seal(checkpoint)
    for item in done.items:
        if item.data_class in ("landing_files", "webhook_bodies"):
            _retire_landing(con, settings, item, by)
            atomically(con, lambda con, item=item: record(item))
    return done


def _retire_landing(con, settings: Settings, item: Item, by: str) -> None:
    path = settings.home / item.target
    reason = f"retention: first read before {item.cutoff}, kept {getattr(settings.retention, item.data_class)}"
    if item.action == "archive":
        retire_file(con, settings, path.resolve(), reason=reason, who=by)
    else:
        path.unlink(missing_ok=True)


def report(done: Plan, *, applied: bool) -> list[str]:
    """What a person reads: each item past its period, and why nothing else moved."""
    verb = "Removed or archived" if applied else "Would remove or archive (dry run, nothing changed)"
    lines = [f"Retention on {done.today} (Lima): {verb}:" if done.items else f"Retention on {done.today} (Lima): nothing is past its period."]
    lines += [f"  {item.line()}" for item in done.items]
    lines += [f"Note: {note}" for note in done.notes]
    return lines


# -- the monthly job ---------------------------------------------------------------------------------

@dg.op(name="apply_retention")
def apply_retention_op(context: dg.OpExecutionContext, pagorecon: PagoreconHome) -> dg.Output[int]:
    settings, day = pagorecon.settings(), lima_today()
    with pagorecon.warehouse() as con:
        done = apply(con, settings, day, by=f"dagster run {context.run_id}")
    for line in report(done, applied=True):
        context.log.info(line)
    return dg.Output(sum(i.count for i in done.items), metadata={"items": len(done.items), "day": str(day)})


@dg.job(name=RETENTION_JOB, description="Archive or remove what is past its retention period (pagorecon.yaml `retention:`).")
def retention_job():
    apply_retention_op()


def retention_schedule(settings: Settings) -> dg.ScheduleDefinition:
    config = settings.retention.schedule
    return dg.ScheduleDefinition(
        name="monthly_retention",
        cron_schedule=config.cron,
        execution_timezone=LIMA_TZ,
        job=retention_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Day {config.day} of every month at {config.hour:02d}:00 Lima: `pagorecon retention --apply`.",
    )

