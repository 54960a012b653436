"""The landing files, by content hash, against what the warehouse already took in. Nothing here
judges a row or knows a reconciliation rule: ingestion records, with each file it loads, the
store x days that file may change (`changed_days`, computed by dbt_like_sql/changed_days/),
and the sensor reads them here (read-only)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pagorecon_dagster.config import Settings
from pagorecon_dagster.ingestion import loader, readers
from pagorecon_dagster.ingestion.sources import SOURCES
from pagorecon_dagster.warehouse.duckdb import WarehouseMissing, connect_lake

KINDS = ("statements", "orders", "fx", "refunds")


@dataclass(frozen=True)
class LandingFile:
    kind: str
    path: Path
    relative: str          # path under landing/
    store_id: str | None   # None for fx and for a folder that names no configured store
    sha256: str


@dataclass
class Touched:
    """Lima days per store that one file may change."""

    days: dict[str, set[dt.date]] = field(default_factory=lambda: defaultdict(set))

    def add(self, store_id: str, days: Iterable[dt.date]) -> None:
        self.days[store_id].update(days)


# Files are immutable once dropped: (path, size, mtime) -> content hash saves re-reading them.
_HASHES: dict[tuple[str, int, int], str] = {}


def content_hash(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        if len(_HASHES) > 100_000:
            _HASHES.clear()
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(readers.BLOCK):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def scan(settings: Settings) -> list[LandingFile]:
    """Every landing file, in the order the loader applies them."""
    found = []
    for kind in KINDS:
        for path in loader.landing_files(settings, kind):
            relative = path.relative_to(settings.landing)
            store_id = relative.parts[1] if SOURCES[kind].per_store and len(relative.parts) >= 3 else None
            if store_id not in settings.store_ids:
                store_id = None
            found.append(LandingFile(kind, path, relative.as_posix(), store_id, content_hash(path)))
    return found


def open_warehouse(settings: Settings) -> duckdb.DuckDBPyConnection | None:
    """A read-only connection (a run writing meanwhile never delays it), or None before the first run."""
    try:
        return connect_lake(settings.lake, read_only=True)
    except WarehouseMissing:
        return None


def _has(con: duckdb.DuckDBPyConnection | None, *tables: str) -> bool:
    if con is None:
        return False
    found = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                       "WHERE table_catalog = current_database()").fetchall()}
    return set(tables) <= found


def touched_by_ingested(settings: Settings, con: duckdb.DuckDBPyConnection | None, hashes: Iterable[str],
                        today: dt.date) -> dict[str, Touched]:
    """For each of these content hashes that `ingested_files` holds: the store x days its loading
    recorded in `changed_days`. A file that could not be read, or whose rows were all rejected
    (or any rejected, for a rates file), touches `today` for its store (every store when it names
    none), so its rejects are alerted promptly. Hashes not ingested yet are absent."""
    wanted = sorted(set(hashes))
    if not wanted or not _has(con, "ingested_files", "changed_days"):
        return {}
    found: dict[str, Touched] = {}
    for sha, source, store_id, status, rows_loaded, rows_quarantined in con.execute(
        "SELECT sha256, source, store_id, status, rows_loaded, rows_quarantined FROM ingested_files"
        " WHERE list_contains(?, sha256) AND status IN ('loaded', 'failed')",
        [wanted],
    ).fetchall():
        touched = found.setdefault(sha, Touched())
        if status == "failed" or (rows_quarantined and (rows_loaded == 0 or source == "fx")):
            for store in [store_id] if store_id in settings.store_ids else settings.store_ids:
                touched.add(store, [today])
    for sha, store_id, day in con.execute(
        "SELECT f.sha256, c.store_id, c.business_date FROM ingested_files AS f"
        " JOIN changed_days AS c ON c.file_seq = f.file_seq"
        " WHERE list_contains(?, f.sha256) AND f.status = 'loaded'",
        [wanted],
    ).fetchall():
        found[sha].add(store_id, [day])
    return found


def day_ranges(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Days as contiguous first..last ranges: a run never spans days that nothing touched."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if ranges and day == ranges[-1][1] + dt.timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def in_partitions(settings: Settings, days: Iterable[dt.date], today: dt.date) -> list[dt.date]:
    """Days that exist as partitions: from start_date up to today (Lima; end_offset=1)."""
    return sorted(d for d in days if settings.start_date <= d <= today)
