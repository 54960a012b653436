"""Which store x Lima-day partitions a landing file touches, read from its rows (docs/landing-formats.md: the
partition of a row comes from its content, not the file name). Files are read with the ingestion
readers and judged by the same Pandera schemas; nothing is loaded into the warehouse, which is only
read (read-only) to find the order days that a late payment, refund or rate changes."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.lima import nth_business_day_after
from pagorecon_dagster.ingestion import loader, readers
from pagorecon_dagster.ingestion.sources import SOURCES, normalize_reference

KINDS = ("statements", "orders", "fx", "refunds")


class WarehouseBusy(Exception):
    """Another process holds the DuckDB file: the sensor skips this tick and retries later."""


@dataclass(frozen=True)
class LandingFile:
    kind: str
    path: Path
    relative: str          # path under landing/
    store_id: str | None   # None for fx and for a folder that names no configured store
    sha256: str


@dataclass
class Touched:
    """Lima days per store. `today` is added for files that touch no day of their own (all rows
    rejected, or unreadable) so their rejects are ingested and alerted promptly."""

    days: dict[str, set[dt.date]] = field(default_factory=lambda: defaultdict(set))

    def add(self, store_id: str, days: Iterable[dt.date | None]) -> None:
        for day in days:
            if day is not None and not pd.isna(day):
                self.days[store_id].add(day if isinstance(day, dt.date) else pd.Timestamp(day).date())

    def merge(self, other: "Touched") -> None:
        for store_id, days in other.days.items():
            self.add(store_id, days)


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


@dataclass
class FileRows:
    """The clean rows of one file as typed warehouse rows, and how many rows were rejected."""

    rows: pd.DataFrame
    rejected: int
    unreadable: str | None = None


def read_rows(settings: Settings, file: LandingFile) -> FileRows:
    source = SOURCES[file.kind]
    store = settings.store(file.store_id) if file.store_id else None
    if source.per_store and store is None:
        return FileRows(pd.DataFrame(), 0, f"landing/{file.relative}: not inside a configured store's folder")
    frames, rejected = [], 0
    try:
        facts = readers.inspect_file(file.path)
        for judged in loader.judge_chunks(file.path, facts, source, store):
            rejected += len(judged.quarantine)
            if not judged.clean.empty:
                frames.append(source.to_rows(judged.clean, store))
    except readers.UnreadableFile as exc:
        return FileRows(pd.DataFrame(), 0, f"landing/{file.relative}: {exc}")
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return FileRows(rows, rejected)


# --- what the rows touch -----------------------------------------------------------------------


class Warehouse:
    """Read-only look-ups in the warehouse; empty answers before the first run built the tables."""

    def __init__(self, con: duckdb.DuckDBPyConnection | None):
        self.con = con
        self.tables = (
            {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()} if con else set()
        )

    def rows(self, sql: str, params: list, needs: tuple[str, ...]) -> list[tuple]:
        if self.con is None or not set(needs) <= self.tables:
            return []
        return self.con.execute(sql, params).fetchall()


def open_warehouse(settings: Settings) -> duckdb.DuckDBPyConnection | None:
    if not settings.warehouse_path.exists():
        return None
    try:
        return duckdb.connect(str(settings.warehouse_path), read_only=True)
    except (duckdb.IOException, duckdb.ConnectionException) as exc:
        text = str(exc).lower()
        if "lock" in text or "different configuration" in text:
            raise WarehouseBusy(f"{settings.warehouse_path} is in use by a running run") from None
        raise


def already_ingested(con: duckdb.DuckDBPyConnection | None, hashes: Iterable[str]) -> set[str]:
    """The content hashes that `ingested_files` already holds: their rows are in the warehouse and
    their days were reconciled by the run that took them in, whatever the Dagster instance remembers."""
    return {sha for (sha,) in Warehouse(con).rows(
        "SELECT DISTINCT sha256 FROM ingested_files WHERE list_contains(?, sha256)", [sorted(hashes)], ("ingested_files",)
    )}


def day_ranges(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Days as contiguous first..last ranges: a run never spans days that nothing touched."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if ranges and day == ranges[-1][1] + dt.timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def order_days(wh: Warehouse, store_id: str, references: list[str]) -> dict[str, set[dt.date]]:
    """Lima days of the store's PagoEfectivo orders with these normalized references."""
    found: dict[str, set[dt.date]] = defaultdict(set)
    for reference, day in wh.rows(
        "SELECT reference, business_date FROM orders WHERE store_id = ? AND is_pagoefectivo AND list_contains(?, reference)",
        [store_id, references], ("orders",),
    ):
        found[reference].add(day)
    return found


def statement_touch(settings: Settings, wh: Warehouse, store_id: str, rows: pd.DataFrame,
                    new_order_days: dict[str, set[dt.date]]) -> set[dt.date]:
    """The CIPs' own days (payment, creation), the days of the orders they pay (an earlier order day
    for a late payment), and the order days whose status the wider statement coverage may change."""
    days: set[dt.date] = set(rows["payment_date"].dropna()) | set(rows["creation_date"].dropna())
    references = sorted(set(rows["reference"].dropna()))  # a CIP without reference pays no order
    known = order_days(wh, store_id, references)
    for reference in references:
        days |= known.get(reference, set()) | new_order_days.get(reference, set())
    days |= coverage_touch(settings, wh, store_id, rows)
    return days


def coverage_touch(settings: Settings, wh: Warehouse, store_id: str, rows: pd.DataFrame) -> set[dt.date]:
    """Coverage moving forward turns orders past their grace day into MISSING_PAYMENT and CIPs past
    their expiry into EXPIRED_UNPAID (docs/reconciliation.md, Rules): those orders' days change too."""
    reach = pd.concat([rows["date_payment"], rows["date_creation"]]).dropna()
    if reach.empty:
        return set()
    new_at = reach.max().to_pydatetime()
    old = wh.rows("SELECT coverage_at FROM statement_coverage WHERE store_id = ?", [store_id], ("statement_coverage",))
    old_at = old[0][0] if old and old[0][0] is not None else None
    if old_at is not None and new_at <= old_at:
        return set()
    lima = dt.timezone(dt.timedelta(hours=-5))
    new_day = new_at.astimezone(lima).date()
    old_day = old_at.astimezone(lima).date() if old_at is not None else dt.date.min
    days = set()
    grace = settings.missing_payment_grace_business_days
    for (day,) in wh.rows(
        "SELECT DISTINCT business_date FROM orders WHERE store_id = ? AND is_pagoefectivo AND status IN ('paid', 'refunded')"
        " AND business_date <= ?",
        [store_id, new_day], ("orders",),
    ):
        if old_day < nth_business_day_after(day, grace, settings.extra_non_working_days) <= new_day:
            days.add(day)
    for (day,) in wh.rows(
        "SELECT DISTINCT o.business_date FROM payments AS p JOIN orders AS o"
        " ON o.store_id = p.store_id AND o.reference = p.reference AND o.is_pagoefectivo"
        " WHERE p.store_id = ? AND p.date_expiry < ? AND (CAST(? AS TIMESTAMPTZ) IS NULL OR p.date_expiry >= ?)",
        [store_id, new_at, old_at, old_at], ("payments", "orders"),
    ):
        days.add(day)
    return days


def order_touch(wh: Warehouse, store_id: str, rows: pd.DataFrame) -> set[dt.date]:
    """The orders' days, the days an order restated with another date leaves, and the payment days
    of CIPs that were orphans until this order arrived."""
    days = set(rows["business_date"].dropna())
    order_ids = sorted(set(rows["order_id"]))
    references = sorted(set(rows["reference"]))
    days |= {d for (d,) in wh.rows(
        "SELECT business_date FROM orders WHERE store_id = ? AND list_contains(?, order_id)", [store_id, order_ids], ("orders",)
    )}
    had_order = set(order_days(wh, store_id, references))
    orphans = [r for r in references if r not in had_order]
    days |= {d for (d,) in wh.rows(
        "SELECT payment_date FROM payments WHERE store_id = ? AND list_contains(?, reference) AND status IN ('paid', 'reversed')"
        " AND payment_date IS NOT NULL",
        [store_id, orphans], ("payments",),
    )}
    return days


def refund_touch(wh: Warehouse, store_id: str, rows: pd.DataFrame) -> set[dt.date]:
    """The day each refund was requested, and the day of the order (or orphan payment) it refunds."""
    lima = rows["requested_at"].dt.tz_convert("America/Lima")
    days = set(lima.dt.date.dropna())
    references = sorted(set(normalize_reference(rows["order_id"])))
    for found in order_days(wh, store_id, references).values():
        days |= found
    days |= {d for (d,) in wh.rows(
        "SELECT p.payment_date FROM payments AS p WHERE p.store_id = ? AND list_contains(?, p.cip) AND p.payment_date IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM orders AS o WHERE o.store_id = p.store_id AND o.reference = p.reference AND o.is_pagoefectivo)",
        [store_id, sorted(set(rows["cip"]))], ("payments", "orders"),
    )}
    return days


def fx_touch(wh: Warehouse, rows: pd.DataFrame) -> Touched:
    """Payments converted with these rates: a rate for day D serves payments from D until the next
    rate already known. Their order days (reconciliation) and payment days (FX_RATE_MISSING)."""
    touched = Touched()
    for currency, dates in rows.groupby("currency")["date"]:
        first, last = min(dates), max(dates)
        later = wh.rows("SELECT min(date) FROM fx_rates WHERE currency = ? AND date > ?", [currency, last], ("fx_rates",))
        until = later[0][0] if later and later[0][0] is not None else dt.date.max
        for store_id, order_day, payment_day in wh.rows(
            """SELECT p.store_id, o.business_date, p.payment_date
               FROM payments AS p
               LEFT JOIN orders AS o ON o.store_id = p.store_id AND o.reference = p.reference AND o.is_pagoefectivo
               WHERE p.status = 'paid' AND p.payment_date >= ? AND p.payment_date < ?
                 AND (p.currency = ? OR (p.currency = 'PEN' AND o.currency = ?))""",
            [first, until, currency, currency], ("payments", "orders"),
        ):
            touched.add(store_id, [order_day, payment_day])
    return touched


def touched_partitions(settings: Settings, files: list[LandingFile], con: duckdb.DuckDBPyConnection | None,
                       today: dt.date) -> dict[str, Touched]:
    """For each file (by content hash): the store x days its rows touch."""
    wh = Warehouse(con)
    read = {f.sha256: read_rows(settings, f) for f in files}
    # Orders arriving in the same tick as the payments for them.
    new_order_days: dict[str, dict[str, set[dt.date]]] = defaultdict(lambda: defaultdict(set))
    for f in files:
        rows = read[f.sha256].rows
        if f.kind == "orders" and not rows.empty:
            for reference, day in rows.loc[rows["is_pagoefectivo"], ["reference", "business_date"]].itertuples(index=False):
                new_order_days[f.store_id][reference].add(day)
    result: dict[str, Touched] = {}
    for f in files:
        file_rows = read[f.sha256]
        touched = Touched()
        rows = file_rows.rows
        if not rows.empty:
            if f.kind == "statements":
                touched.add(f.store_id, statement_touch(settings, wh, f.store_id, rows, new_order_days[f.store_id]))
            elif f.kind == "orders":
                touched.add(f.store_id, order_touch(wh, f.store_id, rows))
            elif f.kind == "refunds":
                touched.add(f.store_id, refund_touch(wh, f.store_id, rows))
            else:
                touched.merge(fx_touch(wh, rows))
        # Rejects or an unreadable file with no day of their own (or global fx files): alert today.
        if (file_rows.unreadable or file_rows.rejected) and (rows.empty or f.kind == "fx"):
            for store_id in [f.store_id] if f.store_id else settings.store_ids:
                touched.add(store_id, [today])
        result[f.sha256] = touched
    return result


def in_partitions(settings: Settings, days: Iterable[dt.date], today: dt.date) -> list[dt.date]:
    """Days that exist as partitions: from start_date up to today (Lima; end_offset=1)."""
    return sorted(d for d in days if settings.start_date <= d <= today)
