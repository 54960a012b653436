"""`pagorecon run` when nothing is new (README.md, Running it on your own data > Nothing new).

A run's result depends on: the files in landing/, the warehouse, pagorecon.yaml, the code, and the
Lima date and hour (alerts that fall due: a statement past its cutoff day, an SBS rate past its due
hour). When none of them moved since a complete run of the same stores and dates, another run
would write what the warehouse and reports/ already hold, so `pagorecon run` says so and starts
none. What a complete run leaves behind, per window, is a record in `state/runs/`:

- a fingerprint of the landing files (path, size, modification time) as the run found them, of
  pagorecon.yaml as loaded, of the code (every file of the package and of its SQL), of the Lima
  date and hour the run started in, and of reports/ as the run left it;
- the warehouse snapshot the run left.

A record is written only by a run that ended well (exit 0: no unreadable file, no failed run) and
whose commits, and any other process's commits while it ran, rewrote only what a run derives from
the warehouse itself (`DERIVED`): a run that loaded a file, or that shared its time with a payout,
a webhook notification or an approval, leaves no record, and the next run is a whole one. The
next run reuses a record only when the warehouse is still at that snapshot (nobody committed since)
and the fingerprint is the same; `--force` runs anyway.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

import pagorecon_dagster
from pagorecon_dagster.config import Settings
from pagorecon_dagster.warehouse.duckdb import SQL_DIR

LIMA = ZoneInfo("America/Lima")
RECORD_VERSION = 1

# Tables (and the view) a run rewrites from what the warehouse already holds: the current state,
# the business calendar, the reconciliation and its summary, and their bookkeeping (which files a
# model has read, the counters). A commit that touched anything else (a landing table, refunds,
# alerts, notifications, report e-mails, ...) means the warehouse's inputs moved.
DERIVED = frozenset({
    "orders", "payments", "reference_counts", "reference_cips", "touched_references", "fx_rates",
    "statement_coverage", "business_calendar", "current_state_marks", "counters",
    "recon_item_rows", "recon_items", "recon_daily_summary",
})


def now_lima() -> dt.datetime:
    return dt.datetime.now(LIMA)


@dataclass(frozen=True)
class Record:
    fingerprint: str
    snapshot: int
    run_ids: tuple[str, ...]
    finished_at: str


def _files(folder: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, modification time in ns) of every file under `folder`."""
    if not folder.is_dir():
        return []
    found = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = Path(root) / name
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed while listed
                continue
            found.append((path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns))
    return found


def code_fingerprint() -> str:
    """Every file of the installed package and of its SQL models."""
    digest = hashlib.sha256()
    package = Path(pagorecon_dagster.__file__).parent
    for folder in dict.fromkeys((package, SQL_DIR)):
        for relative, *_ in _files(folder):
            if "__pycache__" in relative:
                continue
            digest.update(relative.encode())
            digest.update((folder / relative).read_bytes())
    return digest.hexdigest()


def inputs_fingerprint(settings: Settings, stores: Sequence[str], start: dt.date, end: dt.date, started: dt.datetime) -> dict:
    """What a run over the window reads outside the warehouse, as it stands now."""
    return {
        "version": RECORD_VERSION,
        "window": [sorted(stores), start.isoformat(), end.isoformat()],
        "lima_hour": started.astimezone(LIMA).strftime("%Y-%m-%d %H"),
        "settings": hashlib.sha256(repr(settings).encode()).hexdigest(),
        "code": code_fingerprint(),
        "landing": _files(settings.landing),
    }


def fingerprint(inputs: dict, settings: Settings) -> str:
    """`inputs` and reports/ as it is now."""
    whole = {**inputs, "reports": _files(settings.reports)}
    return hashlib.sha256(json.dumps(whole, sort_keys=True).encode()).hexdigest()


def _record_path(settings: Settings, stores: Sequence[str], start: dt.date, end: dt.date) -> Path:
    window = hashlib.sha256(json.dumps([sorted(stores), start.isoformat(), end.isoformat()]).encode()).hexdigest()[:24]
    return settings.home / "state" / "runs" / f"{window}.json"


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT max(snapshot_id) FROM ducklake_snapshots(current_database())").fetchone()[0])


def touched_beyond_derived(con: duckdb.DuckDBPyConnection, after: int) -> list[str]:
    """The tables and views outside DERIVED that commits after snapshot `after` changed (by name)."""
    names = dict(con.execute(
        f"""SELECT CAST(table_id AS VARCHAR), table_name FROM "__ducklake_metadata_{current_database(con)}".ducklake_table
            UNION ALL
            SELECT CAST(view_id AS VARCHAR), view_name FROM "__ducklake_metadata_{current_database(con)}".ducklake_view"""
    ).fetchall())
    touched = set()
    for (changes,) in con.execute(
        "SELECT changes FROM ducklake_snapshots(current_database()) WHERE snapshot_id > ?", [after]
    ).fetchall():
        for kind, items in (changes or {}).items():
            if not kind.startswith(("tables_", "views_")):  # schemas, ...: anything else moved
                touched.add(kind)
                continue
            for item in items:
                touched.add(names.get(item, item.split(".")[-1].strip('"')))
    return sorted(touched - DERIVED)


def current_database(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("SELECT current_database()").fetchone()[0]


def recorded(settings: Settings, stores: Sequence[str], start: dt.date, end: dt.date, now: dt.datetime) -> Record | None:
    """The record of the last complete run of this window, when nothing it read outside the
    warehouse has moved since; `still_current` checks the warehouse."""
    try:
        kept = json.loads(_record_path(settings, stores, start, end).read_text(encoding="utf-8"))
        record = Record(kept["fingerprint"], int(kept["snapshot"]), tuple(kept["run_ids"]), kept["finished_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if record.fingerprint != fingerprint(inputs_fingerprint(settings, stores, start, end, now), settings):
        return None
    return record


def still_current(con: duckdb.DuckDBPyConnection, record: Record) -> bool:
    """Nobody committed to the warehouse since the recorded run."""
    return current_snapshot(con) == record.snapshot


def remember(con: duckdb.DuckDBPyConnection, settings: Settings, stores: Sequence[str], start: dt.date, end: dt.date,
             inputs: dict, before: int, run_ids: Iterable[str]) -> bool:
    """After a run that ended well: write its record, unless some commit since `before` (the
    snapshot before its first run) changed more than a run derives. Returns whether it wrote one."""
    path = _record_path(settings, stores, start, end)
    snapshot = current_snapshot(con)
    if touched_beyond_derived(con, before):
        path.unlink(missing_ok=True)
        return False
    record = {"fingerprint": fingerprint(inputs, settings), "snapshot": snapshot, "run_ids": list(run_ids),
              "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    draft.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(draft, path)
    return True


def forget(settings: Settings, stores: Sequence[str], start: dt.date, end: dt.date) -> None:
    _record_path(settings, stores, start, end).unlink(missing_ok=True)
