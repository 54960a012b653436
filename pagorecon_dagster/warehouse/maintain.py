"""`pagorecon maintain [--dry-run]` and the weekly `maintain` job (docs/operations.md, Maintenance):
DuckLake's own upkeep, in the order its CHECKPOINT runs it. Small inserts kept in the catalog are
written out as Parquet, snapshots older than `warehouse.snapshot_retention_days` are expired, small
files are merged and files mostly deleted are rewritten, then the files nothing references any more
are removed.

Expiring snapshots is what limits how far back `pagorecon diff` and `AT (VERSION => n)` can look.
Files are removed only once they have been unreferenced (or unknown to the catalog) for
`FILE_GRACE`: a reader that began before a merge may still be scanning them, and a writer may be
writing a file its commit has not listed yet."""

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb

from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.lima import LIMA_TZ
from pagorecon_dagster.resources import PagoreconHome
from pagorecon_dagster.warehouse.lake import retrying

MAINTAIN_JOB = "maintain"
FILE_GRACE = dt.timedelta(days=1)


@dataclass(frozen=True)
class Files:
    """The data and delete files the current snapshot lists, and their bytes."""

    data: int
    data_bytes: int
    deletes: int
    delete_bytes: int

    def line(self) -> str:
        return (f"{self.data} data file(s), {size(self.data_bytes)}; "
                f"{self.deletes} delete file(s), {size(self.delete_bytes)}")


@dataclass
class Maintained:
    dry_run: bool
    snapshot_cutoff: dt.datetime
    file_cutoff: dt.datetime
    before: Files
    after: Files
    flushed: list[tuple[str, int]] = field(default_factory=list)        # table, rows written to Parquet
    expired: list[tuple[int, dt.datetime]] = field(default_factory=list)  # snapshot id, time
    merged: list[tuple[str, int, int]] = field(default_factory=list)     # table, files read, files written
    rewritten: list[tuple[str, int, int]] = field(default_factory=list)  # table, files read, files written
    removed: list[str] = field(default_factory=list)     # files no snapshot needs any more
    orphaned: list[str] = field(default_factory=list)    # files in the data path the catalog never listed
    removed_bytes: int | None = 0                        # None: their sizes could not be read


def size(count: int | None) -> str:
    if count is None:
        return "size unknown"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError


def files(con: duckdb.DuckDBPyConnection) -> Files:
    row = con.execute(
        "SELECT coalesce(sum(file_count), 0), coalesce(sum(file_size_bytes), 0), coalesce(sum(delete_file_count), 0),"
        " coalesce(sum(delete_file_size_bytes), 0) FROM ducklake_table_info(current_database())"
    ).fetchone()
    return Files(*(int(v) for v in row))


def _call(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    """One maintenance call (each commits on its own); run again if it lost a race with a run's commit."""
    return retrying(lambda: con.execute(sql, params or []).fetchall())


def _bytes(con: duckdb.DuckDBPyConnection, paths: list[str]) -> int | None:
    if not paths:
        return 0
    try:  # read_blob reads only the sizes here, locally or in a bucket
        return int(con.execute("SELECT coalesce(sum(size), 0) FROM read_blob(?)", [paths]).fetchone()[0])
    except duckdb.Error:
        return None


def maintain(con: duckdb.DuckDBPyConnection, retention_days: int, *, dry_run: bool = False,
             now: dt.datetime | None = None) -> Maintained:
    """Maintain the lake `con` is on; with `dry_run`, only list the snapshots that would expire
    and the files that would be removed (flushing and merging are not previewed)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    snapshot_cutoff = now - dt.timedelta(days=retention_days)
    # Files: the cutoff is the UTC midnight before `now - FILE_GRACE`, so that the same text
    # comparison can never take a file of the cutoff's day (each gets between one and two days).
    file_cutoff = dt.datetime.combine((now - FILE_GRACE).astimezone(dt.timezone.utc).date(), dt.time(),
                                      dt.timezone.utc) - dt.timedelta(microseconds=1)
    lake = con.execute("SELECT current_database()").fetchone()[0]
    done = Maintained(dry_run, snapshot_cutoff, file_cutoff, before=files(con), after=files(con))
    if not dry_run:
        done.flushed = [(table, int(rows)) for _schema, table, rows in _call(con, "CALL ducklake_flush_inlined_data(?)", [lake]) if rows]
    # Chosen here by their time as DuckDB reads it: on a SQLite catalog, `older_than` compares the
    # stored text, and every snapshot of the cutoff's own day counts as older than it.
    done.expired = con.execute(
        "SELECT snapshot_id, snapshot_time FROM ducklake_snapshots(?) WHERE snapshot_time < ?"
        " AND snapshot_id < (SELECT max(snapshot_id) FROM ducklake_snapshots(?)) ORDER BY snapshot_id",
        [lake, snapshot_cutoff, lake]).fetchall()
    if done.expired and not dry_run:
        _call(con, "CALL ducklake_expire_snapshots(?, versions => ?)", [lake, [int(s) for s, _t in done.expired]])
    if not dry_run:
        done.merged = [(t, int(n), int(m)) for _s, t, n, m in _call(con, "CALL ducklake_merge_adjacent_files(?)", [lake]) if n]
        done.rewritten = [(t, int(n), int(m)) for _s, t, n, m in _call(con, "CALL ducklake_rewrite_data_files(?)", [lake]) if n]
    removable = [p for (p,) in _call(con, "CALL ducklake_cleanup_old_files(?, dry_run => true, older_than => ?)", [lake, file_cutoff])]
    orphans = [p for (p,) in _call(con, "CALL ducklake_delete_orphaned_files(?, dry_run => true, older_than => ?)", [lake, file_cutoff])]
    done.removed_bytes = _bytes(con, removable + orphans)  # read before they go
    if dry_run:
        done.removed, done.orphaned = removable, orphans
    else:
        done.removed = [p for (p,) in _call(con, "CALL ducklake_cleanup_old_files(?, older_than => ?)", [lake, file_cutoff])]
        done.orphaned = [p for (p,) in _call(con, "CALL ducklake_delete_orphaned_files(?, older_than => ?)", [lake, file_cutoff])]
        done.after = files(con)
    return done


def report(done: Maintained, retention_days: int) -> list[str]:
    """What a person reads: what was done (or, with --dry-run, what would be)."""
    would = "would be " if done.dry_run else ""
    lima = ZoneInfo(LIMA_TZ)
    lines = [f"Warehouse maintenance{' (dry run, nothing changed)' if done.dry_run else ''}:",
             f"  files now: {done.before.line()}"]
    if done.dry_run:
        lines.append("  inlined rows and small files: written out and merged by a real run (not previewed)")
    else:
        rows = sum(n for _t, n in done.flushed)
        lines.append(f"  inlined rows written to Parquet: {rows} in {len(done.flushed)} table(s)"
                     + (f" ({', '.join(f'{t} {n}' for t, n in done.flushed)})" if done.flushed else ""))
        for label, found in (("merged", done.merged), ("rewritten (mostly deleted)", done.rewritten)):
            lines.append(f"  files {label}: {sum(n for _t, n, _m in found)} into {sum(m for _t, _n, m in found)}"
                         + (f" ({', '.join(f'{t} {n}->{m}' for t, n, m in found)})" if found else ""))
    oldest = min((t for _i, t in done.expired), default=None)
    lines.append(f"  snapshots {would}expired (older than {retention_days} days, before {done.snapshot_cutoff.astimezone(lima):%Y-%m-%d %H:%M} Lima): "
                 f"{len(done.expired)}" + (f", the oldest from {oldest.astimezone(lima):%Y-%m-%d %H:%M}" if oldest else ""))
    lines.append(f"  files {'that would be ' if done.dry_run else ''}removed, unreferenced since before "
                 f"{done.file_cutoff.astimezone(lima):%Y-%m-%d %H:%M} Lima: {len(done.removed)} no longer needed, "
                 f"{len(done.orphaned)} never listed; {size(done.removed_bytes)}")
    if not done.dry_run:
        lines.append(f"  files after: {done.after.line()}")
    lines.append(f"Note: `pagorecon diff` and time travel reach back {retention_days} days (warehouse.snapshot_retention_days).")
    return lines


# -- the weekly job ----------------------------------------------------------------------------------

@dg.op(name="maintain_warehouse")
def maintain_op(context: dg.OpExecutionContext, pagorecon: PagoreconHome) -> dg.Output[int]:
    days = pagorecon.settings().warehouse.snapshot_retention_days
    with pagorecon.warehouse() as con:
        done = maintain(con, days)
    for line in report(done, days):
        context.log.info(line)
    return dg.Output(len(done.removed) + len(done.orphaned), metadata={
        "snapshots_expired": len(done.expired), "files_merged": sum(n for _t, n, _m in done.merged),
        "files_removed": len(done.removed) + len(done.orphaned), "data_files_after": done.after.data,
    })


@dg.job(name=MAINTAIN_JOB, description="Write out inlined rows, merge small files, expire old snapshots and "
        "remove unreferenced files (`pagorecon maintain`).")
def maintain_job():
    maintain_op()


def maintain_schedule(settings: Settings) -> dg.ScheduleDefinition:
    config = settings.warehouse.maintain
    day = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")[config.day]
    return dg.ScheduleDefinition(
        name="weekly_maintain",
        cron_schedule=config.cron,
        execution_timezone=LIMA_TZ,
        job=maintain_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Every {day} at {config.hour:02d}:00 Lima: `pagorecon maintain`.",
    )
