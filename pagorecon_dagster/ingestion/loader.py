"""Ingest landing files into the warehouse, each file all-or-nothing, every row accounted for.

A file goes through: content hash (a re-dropped file is a no-op) -> decode (UTF-8 or cp1252)
-> chunks of rows -> the source's Pandera schema -> clean rows to the source's raw table, bad
rows to `quarantine` with every error -> the store x days it may change to `changed_days`
(dbt_like_sql/changed_days/<source>.sql) -> one `ingested_files` row. A file that cannot be read at all
rolls back whatever of it was staged and is recorded as `failed`."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import duckdb
import numpy as np
import pandas as pd
import pandera.polars as pa_schema
import polars as pl
import pyarrow as pa

from pagorecon_dagster.config import Settings, StoreConfig
from pagorecon_dagster.core.masking import mask_text
from pagorecon_dagster.core.money import describe_money_problem
from pagorecon_dagster.ingestion import readers
from pagorecon_dagster.ingestion.sources import (
    CIP_SEARCH_FIELDS,
    NOTIFICATION_EVENTS,
    SOURCES,
    Source,
)
from pagorecon_dagster.validation import schemas
from pagorecon_dagster.warehouse.duckdb import atomically, model_sql, next_value, set_variables, table_type

CHUNK_ROWS = 200_000
# Files up to this size are judged whole in memory and loaded several to a transaction (a year of
# daily exports for 10 stores is 7,800 files: one commit each took 0.21 s a file).
SMALL_FILE_BYTES = 8 << 20
# At most this many files a transaction: each statement of a transaction reads what the ones before
# it wrote, so a transaction of 3,650 files took minutes to commit.
BATCH_FILES = 50
T = TypeVar("T")
Progress = Callable[[str], None]


@dataclass
class FileOutcome:
    file: str
    source: str
    store_id: str | None
    status: str  # loaded | failed | skipped (same bytes already ingested) | retired
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    error: str | None = None


@dataclass
class IngestReport:
    files: list[FileOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[FileOutcome]:
        return [f for f in self.files if f.status == "failed"]

    def totals(self) -> dict[str, int]:
        return {
            "files_loaded": sum(f.status == "loaded" for f in self.files),
            "files_skipped": sum(f.status == "skipped" for f in self.files),
            "files_failed": len(self.failed),
            "rows_read": sum(f.rows_read for f in self.files),
            "rows_loaded": sum(f.rows_loaded for f in self.files),
            "rows_quarantined": sum(f.rows_quarantined for f in self.files),
        }


@dataclass
class ShopifyCarry:
    """The last order of a chunk may continue in the next: its name and whether it was clean."""

    name: str | None = None
    ok: bool = True
    line: int | None = None  # the order row's line, to credit it with line items of the next chunk


@dataclass
class Chunk:
    """Rows of one file as trimmed strings, one per record: `_line` (and `_raw` for JSON) plus
    the named columns; `keys` are the file's own names of those columns, for the raw row."""

    frame: pl.DataFrame
    # Rows rejected before schema validation (wrong field count, not an object), line -> error.
    rejected: list[tuple[int, str, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


def landing_files(settings: Settings, kind: str) -> list[Path]:
    folder = settings.landing / kind
    if not folder.exists():
        return []
    patterns = ("*.csv", "*.json") if kind == "statements" else ("*.csv",)
    found = {p for pattern in patterns for p in folder.rglob(pattern) if p.is_file()}
    return sorted(found, key=lambda p: p.relative_to(settings.landing).as_posix())


def ingest_source(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    kind: str,
    *,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Every file of landing/<kind> not loaded yet. Small files (a day's export, at most
    SMALL_FILE_BYTES) are read whole in memory, then judged and loaded several at a time, up to
    BATCH_FILES files and CHUNK_ROWS rows (`_judge_batch`, `_load_batch`); larger ones stream, chunk
    by chunk, in a transaction of their own."""
    source = SOURCES[kind]
    report = IngestReport()
    files = landing_files(settings, kind)
    # What the source has loaded, asked once rather than once a file: most runs find most files
    # taken in already. A file loaded since by another process is still found in its transaction.
    loaded = _loaded_contents(con, kind)
    batch: list[Judged] = []

    def flush() -> None:
        _judge_batch(con, source, batch, run_id=run_id, loaded=loaded)
        _load_batch(con, settings, source, [j for j in batch if j.chunks is not None], run_id=run_id, loaded=loaded)
        batch.clear()

    for number, path in enumerate(files, start=1):
        if path.stat().st_size > SMALL_FILE_BYTES:
            flush()
            report.files.append(ingest_file(con, settings, source, path, run_id=run_id, loaded=loaded))
        else:
            judged = _read_whole(con, settings, source, path, run_id=run_id, loaded=loaded)
            if judged.streamed:  # more than CHUNK_ROWS rows: streamed on its own
                loaded.discard((judged.facts.sha256, judged.outcome.store_id))
                flush()
                report.files.append(ingest_file(con, settings, source, path, run_id=run_id, loaded=loaded))
                continue
            report.files.append(judged.outcome)
            if judged.waiting:
                batch.append(judged)
                if len(batch) >= BATCH_FILES or sum(j.rows for j in batch) >= CHUNK_ROWS:
                    flush()
        if progress:
            progress(f"{kind}: {number}/{len(files)} files, {sum(f.rows_read for f in report.files):,} rows read")
    flush()
    return report


@dataclass
class Judged:
    """A small file read whole, waiting for its batch: judged with the batch's other files
    (`_judge_batch`), then loaded in the batch's transaction. `read`: its rows, not judged yet;
    `chunks`: judged, to load. Neither: nothing to load, `outcome` says why (skipped or failed)."""

    path: Path
    outcome: FileOutcome
    facts: readers.FileFacts | None = None
    store: StoreConfig | None = None
    read: list[Chunk] | None = None
    chunks: list[JudgedChunk] | None = None

    @property
    def rows(self) -> int:
        if self.chunks is not None:
            return sum(c.read for c in self.chunks)
        return sum(len(c.frame) + len(c.rejected) for c in self.read or ())

    @property
    def waiting(self) -> bool:
        return self.read is not None or self.chunks is not None

    @property
    def streamed(self) -> bool:
        """More than one chunk (CHUNK_ROWS rows): the file streams in a transaction of its own."""
        return len(self.read if self.read is not None else self.chunks or ()) > 1


def _read_whole(con, settings: Settings, source: Source, path: Path, *, run_id: str | None,
                loaded: set[tuple[str, str | None]]) -> Judged:
    """Read a small file whole, writing nothing, unless it is already loaded or unreadable (then
    its failure is recorded, as `ingest_file` does). It waits to be judged with its batch."""
    relative = path.relative_to(settings.landing)
    store_id = relative.parts[1] if source.per_store and len(relative.parts) >= 3 else None
    judged = Judged(path, FileOutcome(relative.as_posix(), source.kind, store_id, "loaded"))
    try:
        judged.facts = readers.inspect_file(path)
        if (judged.facts.sha256, store_id) in loaded:
            judged.outcome.status = "skipped"
            return judged
        judged.store = _store_for(settings, source, relative)
        judged.read = list(_chunks(path, judged.facts, source, judged.store))
        judged.outcome.rows_read = judged.rows  # (counted again as the batch writes them)
        loaded.add((judged.facts.sha256, store_id))  # the same bytes again in this batch: skipped
    except readers.UnreadableFile as exc:
        _fail(con, judged.outcome, str(exc), judged.facts, run_id)
    except Exception as exc:  # noqa: BLE001 - whatever one file does, the other files still load
        _fail(con, judged.outcome, readers.unexpected_failure(exc), judged.facts, run_id)
    return judged


def _judge_batch(con, source: Source, batch: list[Judged], *, run_id: str | None,
                 loaded: set[tuple[str, str | None]]) -> None:
    """Judge the batch's files that wait (`read`): those of one store whose rows have the same
    columns in one Pandera call, since a call costs some 40 ms however few its rows (a day's export
    has a few dozen). If that call fails, each of those files is judged alone, and a file that fails
    then is recorded as failed and loads nothing."""
    groups: dict[tuple, list[Judged]] = {}
    for j in batch:
        if j.read is not None:
            (chunk,) = j.read  # (a file of several chunks streams on its own)
            groups.setdefault((j.outcome.store_id, tuple(chunk.frame.schema.items())), []).append(j)
    for files in groups.values():
        schema = source.schema(files[0].store)
        judge = _judge_shopify if _shopify(source, files[0].store) else _judge
        try:
            verdicts = judge(schema, [j.read[0] for j in files])
        except Exception:  # noqa: BLE001 - judged again file by file, where a failure is that file's
            verdicts = [None] * len(files)
        for j, verdict in zip(files, verdicts):
            try:
                j.chunks = [verdict or judge(schema, j.read)[0]]
            except Exception as exc:  # noqa: BLE001 - whatever one file does, the other files still load
                loaded.discard((j.facts.sha256, j.outcome.store_id))
                _fail(con, j.outcome, readers.unexpected_failure(exc), j.facts, run_id)
            j.read = None


def _load_batch(con, settings: Settings, source: Source, batch: list[Judged], *, run_id: str | None,
                loaded: set[tuple[str, str | None]]) -> None:
    """Load judged small files in one transaction: every file whole, or none of them. Each keeps
    its own file number, rows, quarantine and `ingested_files` row, as file by file; the statements
    are one per batch, not one per file (each costs a DuckLake statement's 20-30 ms). When the
    transaction fails (other than by a conflict, which runs it again), each file is loaded again on
    its own, so that one file's failure is that file's alone."""
    if not batch:
        return
    try:
        atomically(con, lambda con: _write_batch(con, settings, source, batch, run_id))
    except Exception:  # noqa: BLE001 - retried file by file, where a failure is recorded per file
        for j in batch:
            loaded.discard((j.facts.sha256, j.outcome.store_id))
            alone = ingest_file(con, settings, source, j.path, run_id=run_id, loaded=loaded)
            for name, value in vars(alone).items():  # the report holds j.outcome
                setattr(j.outcome, name, value)


def _write_batch(con, settings: Settings, source: Source, batch: list[Judged], run_id: str | None) -> None:
    first_seq = next_value(con, "file_seq", len(batch))
    shas = [j.facts.sha256 for j in batch]
    taken = set(con.execute(  # loaded by another process since they were judged
        "SELECT sha256, store_id FROM ingested_files WHERE source = ? AND status = 'loaded' AND list_contains(?, sha256)",
        [source.kind, shas],
    ).fetchall())
    typed, quarantined, records = [], [], []
    for seq, j in enumerate(batch, start=first_seq):
        outcome = j.outcome
        outcome.status, outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined = "loaded", 0, 0, 0
        if (j.facts.sha256, outcome.store_id) in taken:
            outcome.status = "skipped"
            continue
        for chunk in j.chunks:
            outcome.rows_read += chunk.read
            outcome.rows_quarantined += len(chunk.quarantine)
            quarantined.extend((outcome.store_id, outcome.file, *entry, seq) for entry in chunk.quarantine)
            rows = _typed_rows(source, j.store, chunk.clean, outcome.file, seq)
            if rows is not None:
                typed.append(rows)
                outcome.rows_loaded += _rows_of(chunk.clean)
        records.append((outcome, j.facts, seq))
    if typed:
        _insert_rows(con, source, pl.concat(typed, how="vertical"))
    if quarantined:
        q = pl.DataFrame(quarantined, orient="row", schema={"store_id": pl.String, "file": pl.String, "line": pl.Int64,
                                                            "raw": pl.String, "errors": pl.String, "file_seq": pl.Int64})
        con.execute("INSERT INTO quarantine SELECT ?, store_id, file, line, raw, errors, file_seq FROM q", [source.kind])
    if records:
        _record_changed_days(con, settings, source, records[0][2], records[-1][2])
        _record_all(con, records, run_id)


def _store_for(settings: Settings, source: Source, relative: Path) -> StoreConfig | None:
    if not source.per_store:
        return None
    parts = relative.parts  # (kind, store_id, ..., file)
    if len(parts) < 3:
        raise readers.UnreadableFile(f"must be inside landing/{source.kind}/<store_id>/")
    try:
        return settings.store(parts[1])
    except KeyError:
        raise readers.UnreadableFile(
            f"store {parts[1]!r} is not in pagorecon.yaml (known: {', '.join(settings.store_ids)})"
        ) from None


def ingest_file(
    con: duckdb.DuckDBPyConnection, settings: Settings, source: Source, path: Path, *, run_id: str | None = None,
    loaded: set[tuple[str, str | None]] | None = None,
) -> FileOutcome:
    """Load one landing file. `loaded`: the source's loaded (sha256, store_id) pairs, if the caller
    has them (`_loaded_contents`); the file's own load is added to it."""
    relative = path.relative_to(settings.landing)
    name = relative.as_posix()
    store_id = relative.parts[1] if source.per_store and len(relative.parts) >= 3 else None
    outcome = FileOutcome(name, source.kind, store_id, "loaded")
    facts = None
    try:
        facts = readers.inspect_file(path)
        if ((facts.sha256, store_id) in loaded) if loaded is not None else _already_loaded(con, facts.sha256, source.kind, store_id):
            outcome.status = "skipped"
            return outcome
        store = _store_for(settings, source, relative)

        atomically(con, lambda con: _load_file(con, settings, source, store, outcome, facts,
                                               one_ahead(judge_chunks(path, facts, source, store)), run_id))
        if loaded is not None and outcome.status == "loaded":
            loaded.add((facts.sha256, store_id))
    except readers.UnreadableFile as exc:
        _fail(con, outcome, str(exc), facts, run_id)
    except Exception as exc:  # noqa: BLE001 - whatever one file does, the other files still load
        _fail(con, outcome, readers.unexpected_failure(exc), facts, run_id)
    return outcome


def _load_file(con, settings: Settings, source: Source, store: StoreConfig | None, outcome: FileOutcome,
               facts: readers.FileFacts, chunks: Iterable[JudgedChunk], run_id: str | None) -> None:
    """Write one judged file inside the caller's transaction: its rows, its quarantine, the days it
    changes and its `ingested_files` row. Another process may have loaded the same file since it
    was checked: taking the file's number makes two loads conflict, and the one that runs again
    finds it loaded."""
    outcome.status, outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined = "loaded", 0, 0, 0
    file_seq = next_value(con, "file_seq")
    if _already_loaded(con, facts.sha256, source.kind, outcome.store_id):
        outcome.status = "skipped"
        return
    for judged in chunks:
        _load_chunk(con, source, store, judged, outcome.file, file_seq, outcome)
    _record_changed_days(con, settings, source, file_seq)
    _record(con, outcome, facts, file_seq, run_id)


# What a loaded file changes is read against the current state it changes; before the first
# refresh those tables do not exist yet, and stand empty (each refresh rebuilds them whole).
CHANGED_DAYS_READS = ("orders", "payments", "reference_cips", "fx_rates", "statement_coverage")


def _record_changed_days(con, settings: Settings, source: Source, file_seq: int, last_file_seq: int | None = None) -> None:
    """The store x days the file may change, in the file's transaction: only what a file of its
    source can change (dbt_like_sql/changed_days/<source>.sql), each distinct day once. Files
    file_seq..last_file_seq loaded together each get the days of them all: what they may change,
    together (the landing sensor may reconcile a few days more, never fewer)."""
    set_variables(con, {"first_file_seq": file_seq, "file_seq": last_file_seq or file_seq,
                        "grace_business_days": settings.missing_payment_grace_business_days})
    insert = (
        "INSERT INTO changed_days BY NAME SELECT DISTINCT f.file_seq, d.store_id, d.business_date"
        f" FROM ({model_sql(f'changed_days/{source.kind}')}) AS d"
        " CROSS JOIN range(getvariable('first_file_seq'), getvariable('file_seq') + 1) AS f(file_seq)"
        " WHERE d.business_date IS NOT NULL ORDER BY ALL"
    )
    try:
        con.execute(insert)
    except duckdb.CatalogException:
        # Before the first refresh: binding failed, which leaves the transaction usable.
        for name in CHANGED_DAYS_READS:
            if table_type(con, name) is None:
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM ({model_sql(name)}) LIMIT 0")
        con.execute(insert)


def _fail(con, outcome: FileOutcome, error: str, facts, run_id) -> None:
    # Masked as a last line of defence: a person reads this in the terminal, the log and alerts.
    outcome.status, outcome.error = "failed", mask_text(error)
    outcome.rows_read = outcome.rows_loaded = outcome.rows_quarantined = 0
    _record(con, outcome, facts, None, run_id)


def _already_loaded(con, sha256: str, kind: str, store_id: str | None) -> bool:
    return (sha256, store_id) in _loaded_contents(con, kind, sha256)


def _loaded_contents(con, kind: str, sha256: str | None = None) -> set[tuple[str, str | None]]:
    """(sha256, store_id) of the source's loaded files (only those with that content, if given)."""
    return set(con.execute(
        "SELECT sha256, store_id FROM ingested_files WHERE source = ? AND status = 'loaded' AND (? IS NULL OR sha256 = ?)",
        [kind, sha256, sha256],
    ).fetchall())


def _record_all(con, records: list[tuple[FileOutcome, readers.FileFacts, int]], run_id: str | None) -> None:
    """`_record` of several loaded files, in two statements."""
    now = dt.datetime.now(dt.timezone.utc)
    rows = pl.DataFrame(
        [(o.file, f.sha256, o.source, o.store_id, seq, f.encoding, o.rows_read, o.rows_loaded, o.rows_quarantined,
          o.status, o.error, now, run_id) for o, f, seq in records if o.status == "loaded"],
        orient="row",
        schema={"file": pl.String, "sha256": pl.String, "source": pl.String, "store_id": pl.String, "file_seq": pl.Int64,
                "encoding": pl.String, "rows_read": pl.Int64, "rows_loaded": pl.Int64, "rows_quarantined": pl.Int64,
                "status": pl.String, "error": pl.String, "ingested_at": pl.Datetime("us", "UTC"), "run_id": pl.String},
    )
    if rows.is_empty():
        return
    con.execute("DELETE FROM ingested_files AS i USING rows AS r WHERE i.file = r.file AND i.sha256 = r.sha256 AND i.status = 'failed'")
    con.execute("INSERT INTO ingested_files SELECT * FROM rows")


def _record(con, outcome: FileOutcome, facts, file_seq, run_id) -> None:
    sha = facts.sha256 if facts else ""
    con.execute("DELETE FROM ingested_files WHERE file = ? AND sha256 = ? AND status = 'failed'", [outcome.file, sha])
    con.execute(
        "INSERT INTO ingested_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            outcome.file, sha, outcome.source, outcome.store_id, file_seq,
            facts.encoding if facts else None,
            outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined,
            outcome.status, outcome.error, dt.datetime.now(dt.timezone.utc), run_id,
        ],
    )


# --- retiring a landing file that can never be read ---------------------------------------------


class RetireRefused(ValueError):
    """The file cannot be retired (not a landing file); nothing was moved."""


def landing_file_for(settings: Settings, given: str) -> Path:
    """The landing file `given` names: a path relative to landing/ (as runs print it, with or
    without the leading `landing/`), or an absolute path inside landing/."""
    landing = settings.landing.resolve()
    path = Path(given).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        candidates = [landing / path]
        if path.parts[:1] == ("landing",):
            candidates.append(landing / Path(*path.parts[1:]))
    chosen = next((c for c in candidates if c.exists()), candidates[0]).resolve()
    if not chosen.is_relative_to(landing) or chosen == landing:
        raise RetireRefused(f"{given}: is not inside {landing}; only landing files can be retired")
    relative = chosen.relative_to(landing)
    if not chosen.exists():
        raise RetireRefused(f"landing/{relative.as_posix()}: no such file")
    if chosen.is_dir():
        raise RetireRefused(f"landing/{relative.as_posix()}: is a folder; name one file")
    if relative.parts[0] not in SOURCES:
        raise RetireRefused(f"landing/{relative.as_posix()}: is not under {', '.join(f'landing/{k}/' for k in SOURCES)}")
    return chosen


def retire_file(con: duckdb.DuckDBPyConnection, settings: Settings, path: Path, *, reason: str, who: str) -> Path:
    """Move a landing file to archive/landing/<its path> (another name if that one is taken: an
    archived copy is never overwritten) and record it `retired` in `ingested_files`. Returns the
    archived path. The landing file goes only once the record is committed."""
    landing = settings.landing.resolve()
    relative = path.relative_to(landing)
    source = SOURCES[relative.parts[0]]
    store_id = relative.parts[1] if source.per_store and len(relative.parts) >= 3 else None
    archived = _archive_copy(path, settings.archive / "landing" / relative)
    shown = archived.relative_to(settings.archive.parent).as_posix()
    try:
        facts = readers.FileFacts(readers.sha256_of(archived), archived.stat().st_size, None, False)
        outcome = FileOutcome(relative.as_posix(), source.kind, store_id, "retired",
                              error=mask_text(f"retired by {who} to {shown}: {reason}"))
        atomically(con, lambda con: _record(con, outcome, facts, None, None))
    except BaseException:
        archived.unlink()
        raise
    path.unlink()
    return archived


def _archive_copy(path: Path, wanted: Path) -> Path:
    """A hard link (or, across file systems, a copy) at `wanted` or the first free `name-N.ext`."""
    wanted.parent.mkdir(parents=True, exist_ok=True)
    for number in range(1, 10_000):
        target = wanted if number == 1 else wanted.with_name(f"{wanted.stem}-{number}{wanted.suffix}")
        try:
            os.link(path, target)
            return target
        except FileExistsError:
            continue
        except OSError:  # no hard links here: copy, still refusing to overwrite
            try:
                with open(path, "rb") as src, open(target, "xb") as dst:
                    shutil.copyfileobj(src, dst)
                    dst.flush()
                    os.fsync(dst.fileno())
                return target
            except FileExistsError:
                continue
    raise RetireRefused(f"{wanted}: 9,999 archived copies of this name already exist")


# --- reading files into chunks of string rows ------------------------------------------------


def _chunks(path: Path, facts, source: Source, store: StoreConfig | None) -> Iterator[Chunk]:
    if path.suffix.lower() == ".json":
        yield from _json_chunks(path, facts)
        return
    header, delimiter = readers.read_csv_header(path, facts)
    schema = source.schema(store)
    original = _original_header(path, facts, delimiter)
    missing = [c for c in schemas.required_columns(schema) if c not in header]
    if missing:
        raise readers.UnreadableFile(_header_problem(schema, header, missing))
    width = len(header)
    names = list(dict.fromkeys(header))  # the frame's columns (see _text_frame)
    keys = original if len(original) == len(names) else names
    batches = readers.native_csv_batches(path, facts, width, delimiter, CHUNK_ROWS)
    if batches is not None:
        line = 2  # one record a line
        for batch in batches:
            frame = _text_frame(header, batch, range(line, line + len(batch)))
            line += len(batch)
            yield Chunk(frame, [], names, keys)
        if line == 2:  # a header and no rows: read, and loaded (zero rows)
            yield Chunk(_text_frame(header, None, []), [], names, keys)
        return
    empty = True
    for records, lines in readers.iter_csv_blocks(path, facts, delimiter, CHUNK_ROWS):
        empty = False
        rejected: list[tuple[int, str, str]] = []
        if any(len(fields) != width for fields in records):
            kept, kept_lines = [], []
            for fields, line in zip(records, lines):
                if len(fields) == width:
                    kept.append(fields)
                    kept_lines.append(line)
                else:
                    extra = {"_extra": fields[width:]} if len(fields) > width else {}
                    raw = readers.raw_json(dict(zip(original, fields)) | extra)
                    rejected.append((line, raw, f"row has {len(fields)} fields, the header has {width}"))
            records, lines = kept, kept_lines
        columns = pl.DataFrame(list(zip(*records)) if records else None, schema=[f"c{i}" for i in range(width)], orient="col")
        yield Chunk(_text_frame(header, columns, lines), rejected, names, keys)
    if empty:  # a header and no rows: read, and loaded (zero rows)
        yield Chunk(_text_frame(header, None, []), [], names, keys)


def _header_problem(schema, header: list[str], missing: list[str]) -> str:
    """What is wrong with line 1. Only the schema's own column names are repeated: a file without
    a header has a data row there, with documents and emails in it."""
    known = [c for c in header if c in schema.columns]
    others = len(header) - len(known)
    expected = ", ".join(schemas.required_columns(schema))
    if not known:
        return (
            f"line 1: no header; none of its {len(header)} column(s) is a column name this folder takes. "
            f"The first line must name the columns, at least: {expected}"
        )
    named = ", ".join(known) + (f" and {others} other column(s)" if others else "")
    return f"line 1: the header is missing required column(s) {', '.join(missing)} (it names {named}); add them"


def _text_frame(header: list[str], columns: pl.DataFrame | None, lines) -> pl.DataFrame:
    """The records' fields (columns in file order, any names) as trimmed text named by `header`
    (an empty field is ''), after their `_line`."""
    if columns is None:
        columns = pl.DataFrame(schema=[f"c{i}" for i in range(len(header))])
    # A name the header repeats holds its last column, at the place of its first. One select: polars
    # trims the columns side by side.
    text = {name: pl.nth(i).cast(pl.String).fill_null("").str.strip_chars().alias(name) for i, name in enumerate(header)}
    return columns.lazy().select(pl.lit(pl.Series("_line", lines, dtype=pl.Int64)), *text.values()).collect()


def _original_header(path: Path, facts, delimiter: str) -> list[str]:
    import csv

    with open(path, encoding=facts.encoding, newline="") as fh:
        return [h.strip() for h in next(csv.reader([fh.readline()], delimiter=delimiter))]


def _json_chunks(path: Path, facts) -> Iterator[Chunk]:
    doc = readers.read_json(path, facts)
    if isinstance(doc, dict) and isinstance(doc.get("data"), list) and "eventType" not in doc:
        items = doc["data"]
    elif isinstance(doc, dict):
        items = [doc]
    elif isinstance(doc, list):
        items = doc
    else:
        raise readers.UnreadableFile("JSON must be a list of CIPs, the /v1/cips/search reply, or notification bodies")
    rows, lines, rejected = [], [], []
    for index, item in enumerate(items, start=1):
        raw = readers.raw_json(item)
        if not isinstance(item, dict):
            rejected.append((index, raw, f"item {index} is not a JSON object"))
            continue
        if "eventType" in item:
            data = item.get("data") if isinstance(item.get("data"), dict) else {}
            event = str(item.get("eventType", "")).strip().lower()
            row = {
                "cip": data.get("cip"), "transaction_code": data.get("transactionCode"),
                "operation_number": item.get("operationNumber"), "currency": data.get("currency"),
                "amount": data.get("amount"), "date_payment": data.get("paymentDate"),
                "date_creation": data.get("dateCreation"), "date_expiry": data.get("dateExpiry"),
                "status": NOTIFICATION_EVENTS.get(event, event or ""), "_origin": "notification",
            }
            if event not in NOTIFICATION_EVENTS:
                rejected.append((index, raw, f"eventType: {item.get('eventType')!r} is not one of {', '.join(NOTIFICATION_EVENTS)}"))
                continue
        else:
            row = {col: item.get(key) for key, col in CIP_SEARCH_FIELDS.items()}
            status = item.get("status")
            row["status"] = status if status not in (None, "") else item.get("statusName")
            row["_origin"] = "cip_search"
        rows.append({k: readers.json_text(v) for k, v in row.items()})
        lines.append(index)
    names = list(CIP_SEARCH_FIELDS.values()) + ["status", "_origin"]
    text = [pl.Series(name, [row.get(name, "") for row in rows], dtype=pl.String).str.strip_chars() for name in names]
    frame = pl.DataFrame([pl.Series("_line", lines, dtype=pl.Int64), *text,
                          pl.Series("_raw", [readers.raw_json(items[i - 1]) for i in lines], dtype=pl.String)])
    yield Chunk(frame, rejected, names, names)


# --- validating and loading a chunk ------------------------------------------------------------


def _errors_by_row(schema: pa_schema.DataFrameSchema, frame: pl.DataFrame) -> dict[int, list[str]]:
    """Every error of every bad row, by the row's position in `frame`."""
    try:
        schema.validate(frame, lazy=True)
        return {}
    except pa_schema.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    errors: dict[int, list[str]] = {}
    seen: set[tuple[int, str]] = set()
    for row in cases.iter_rows(named=True):
        if row["index"] is None:
            continue
        index = int(row["index"])
        message = str(row["check"])
        if row["schema_context"] == "Column":
            value = "" if row["failure_case"] is None else str(row["failure_case"])
            if message == schemas.RULE_MONEY:
                message = f"{row['column']}: {describe_money_problem(value)}"
            elif message in (schemas.RULE_REQUIRED, schemas.RULE_NO_NUL):
                message = f"{row['column']}: {message}"
            else:
                message = f"{row['column']}: {value!r} {message}"
        key = (index, message)
        if key not in seen:
            seen.add(key)
            errors.setdefault(index, []).append(message)
    return errors


@dataclass
class JudgedChunk:
    """One chunk after validation: clean string rows, quarantine entries (line, raw, errors),
    and Shopify line items that continue the previous chunk's clean order."""

    read: int
    clean: pl.DataFrame
    quarantine: list[tuple[int, str, str]]
    continued_line_items: int = 0
    continued_order_line: int | None = None


def judge_chunks(path: Path, facts: readers.FileFacts, source: Source, store: StoreConfig | None) -> Iterator[JudgedChunk]:
    """Read a file and validate it, chunk by chunk, loading nothing: what ingestion loads and
    what the landing sensor inspects are the same rows."""
    carry = ShopifyCarry()
    schema = source.schema(store)
    for chunk in _chunks(path, facts, source, store):
        if not _shopify(source, store):
            yield _judge(schema, [chunk])[0]
            continue
        frame = schemas.parse_columns(schema, chunk.frame)
        quarantine = list(chunk.rejected)
        previous_order_line = carry.line
        clean, shopify_rejects, continued = _shopify_orders(frame, chunk, schema, carry)
        quarantine.extend(shopify_rejects)
        yield JudgedChunk(len(frame) + len(chunk.rejected), clean, quarantine, continued, previous_order_line)


def _judge_shopify(schema: pa_schema.DataFrameSchema, chunks: list[Chunk]) -> list[JudgedChunk]:
    """Whole Shopify exports (each chunk a file, starting with an order row) judged as `_judge`
    does: the order rows of them all in one Pandera call."""
    frame, parts = _parsed_together(schema, chunks)
    order_rows = [~_line_items(part, ShopifyCarry()) for part in parts]
    errors = _errors_by_row(schema, frame.filter(pl.Series(np.concatenate(order_rows) if order_rows else [], dtype=pl.Boolean)))
    verdicts, first = [], 0
    for chunk, part, orders in zip(chunks, parts, order_rows):
        last = first + int(orders.sum())
        own = {index - first: messages for index, messages in errors.items() if first <= index < last}
        clean, rejects, _ = _shopify_orders(part, chunk, schema, ShopifyCarry(), own)
        verdicts.append(JudgedChunk(len(part) + len(chunk.rejected), clean, [*chunk.rejected, *rejects]))
        first = last
    return verdicts


def _parsed_together(schema: pa_schema.DataFrameSchema, chunks: list[Chunk]) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """The chunks' rows as one frame, with the values the schema judges parsed (parsed here, once:
    the typed rows reuse them), and each chunk's slice of it."""
    frames = [c.frame for c in chunks]
    frame = schemas.parse_columns(schema, pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0])
    parts, start = [], 0
    for f in frames:
        parts.append(frame.slice(start, len(f)))
        start += len(f)
    return frame, parts


def _shopify(source: Source, store: StoreConfig | None) -> bool:
    """A Shopify export: an order's line items follow it on rows of their own (`_shopify_orders`)."""
    return source.kind == "orders" and store is not None and store.order_format == "shopify"


def _judge(schema: pa_schema.DataFrameSchema, chunks: list[Chunk]) -> list[JudgedChunk]:
    """Chunks with the same columns judged in one Pandera call. Every rule of the schemas is a test
    of one row, so a row's errors are those it has judged with its own chunk alone."""
    frame, parts = _parsed_together(schema, chunks)
    errors = _errors_by_row(schema, frame)
    bad_rows = np.array(sorted(errors), dtype=np.int64)
    verdicts, start = [], 0
    for chunk, part in zip(chunks, parts):
        end = start + len(part)
        at = bad_rows[np.searchsorted(bad_rows, start):np.searchsorted(bad_rows, end)]
        bad = [int(i) - start for i in at]
        quarantine = list(chunk.rejected)
        lines = part["_line"].gather(bad).to_list()
        for index, line, raw in zip(bad, lines, _raws(part, chunk, bad)):
            quarantine.append((line, raw, "; ".join(errors[index + start])))
        clean = part.filter(~_at(len(part), bad)) if bad else part
        verdicts.append(JudgedChunk(len(part) + len(chunk.rejected), clean, quarantine))
        start = end
    return verdicts


_END = object()


def one_ahead(items: Iterator[T]) -> Iterator[T]:
    """`items`, the next one made in a worker thread while the caller works on this one: the next
    chunk is read and judged (polars, Arrow) while DuckDB writes this one (both let go of the GIL).
    At most one item waits; leaving early waits for that one and drops it."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pagorecon-judge") as worker:
        upcoming = worker.submit(next, items, _END)
        while (item := upcoming.result()) is not _END:
            upcoming = worker.submit(next, items, _END)
            yield item


def _at(length: int, positions) -> pl.Series:
    """A boolean mask, true at `positions`."""
    mask = np.zeros(length, dtype=bool)
    mask[list(positions)] = True
    return pl.Series(mask)


def _load_chunk(
    con, source: Source, store: StoreConfig | None, judged: JudgedChunk, file: str, file_seq: int, outcome: FileOutcome
) -> None:
    quarantine, clean = judged.quarantine, judged.clean
    if judged.continued_line_items and judged.continued_order_line is not None:
        con.execute(
            "UPDATE order_rows SET line_items = line_items + ? WHERE file_seq = ? AND line = ?",
            [judged.continued_line_items, file_seq, judged.continued_order_line],
        )
        outcome.rows_loaded += judged.continued_line_items
    outcome.rows_read += judged.read
    loaded_lines = _insert_clean(con, source, store, clean, file, file_seq)
    outcome.rows_loaded += loaded_lines
    outcome.rows_quarantined += len(quarantine)
    if quarantine:
        q = pd.DataFrame(quarantine, columns=["line", "raw", "errors"])
        con.execute("INSERT INTO quarantine SELECT ?, ?, ?, line, raw, errors, ? FROM q",
                    [source.kind, store.id if store else None, file, file_seq])


def _raws(frame: pl.DataFrame, chunk: Chunk, positions: list[int]) -> list[str]:
    """The rows at `positions` as read, JSON `{column: value}` under the file's own header names."""
    if not positions:
        return []
    if "_raw" in frame.columns:
        return frame["_raw"].gather(positions).to_list()
    rows = frame.select(chunk.columns)[positions].rows()
    return [readers.raw_json(dict(zip(chunk.keys, values))) for values in rows]


def _insert_clean(con, source: Source, store: StoreConfig | None, clean: pl.DataFrame, file: str, file_seq: int) -> int:
    typed = _typed_rows(source, store, clean, file, file_seq)
    if typed is None:
        return 0
    _insert_rows(con, source, typed)
    return _rows_of(clean)


# DuckDB scans an Arrow table one record batch per thread: a 200,000-row chunk handed over as one
# batch was written by one thread (0.50 s), in batches of 50,000 by all of them (0.25 s).
INSERT_BATCH_ROWS = 50_000


def _insert_rows(con, source: Source, typed: pl.DataFrame) -> None:
    """Append typed rows (the columns of the source's raw table) to that table."""
    whole = typed.to_arrow(compat_level=pl.CompatLevel.oldest())
    rows = pa.Table.from_batches(whole.to_batches(max_chunksize=INSERT_BATCH_ROWS), schema=whole.schema)
    columns = ", ".join(typed.columns)
    con.execute(f"INSERT INTO {source.table} ({columns}) SELECT {columns} FROM rows")


def _typed_rows(source: Source, store: StoreConfig | None, clean: pl.DataFrame, file: str, file_seq: int) -> pl.DataFrame | None:
    """The clean rows as the columns of the source's raw table (None: no rows)."""
    if clean.is_empty():
        return None
    typed = source.to_rows(clean, store)
    if source.per_store:
        typed = typed.with_columns(store_id=pl.lit(store.id, dtype=pl.String))
    return typed.with_columns(file=pl.lit(file, dtype=pl.String), file_seq=pl.lit(file_seq, dtype=pl.Int64), line=clean["_line"])


def _rows_of(clean: pl.DataFrame) -> int:
    """The source rows a clean frame stands for (a Shopify order row counts its line items)."""
    return int(clean["_rows"].sum()) if "_rows" in clean.columns else len(clean)


# --- Shopify: one row per line item; the order's first row carries the order -------------------


def _line_items(frame: pl.DataFrame, carry: ShopifyCarry) -> np.ndarray:
    """True at a line-item row: the same order name as the row before it (the previous chunk's
    last row for the first)."""
    names = frame["name"].fill_null("").to_numpy().astype(object)
    previous = np.roll(names, 1)
    if len(names):
        previous[0] = carry.name
    return (names == previous) & (names != "")


def _shopify_orders(frame: pl.DataFrame, chunk: Chunk, schema, carry: ShopifyCarry,
                    order_errors: dict[int, list[str]] | None = None):
    """Split line-item rows from order rows, validate the order rows (unless `order_errors`, by
    position among them, is given), and send line items of a rejected order to quarantine with it.
    Returns the clean order rows, the quarantine entries and how many leading line items continue
    the previous chunk's (clean) order."""
    names = frame["name"].fill_null("").to_numpy().astype(object)
    is_line_item = _line_items(frame, carry)
    order_at = np.flatnonzero(~is_line_item)  # frame position of each order row
    if order_errors is None:
        order_errors = _errors_by_row(schema, frame.filter(pl.Series(~is_line_item)))
    errors = {int(order_at[i]): messages for i, messages in order_errors.items()}
    # Each line item takes its order's outcome; leading ones continue the previous chunk's order.
    group = np.cumsum(~is_line_item)  # 0 for leading line items, then the order's number
    outcome = np.array([carry.ok, *(index not in errors for index in order_at)], dtype=bool)
    order_ok = outcome[group]
    rows_per_order = np.bincount(group, minlength=len(order_at) + 1)
    rejected = np.flatnonzero(~order_ok).tolist()
    lines = frame["_line"].gather(rejected).to_list()
    quarantine = []
    for index, line, raw in zip(rejected, lines, _raws(frame, chunk, rejected)):
        if index in errors:
            message = "; ".join(errors[index])
        else:
            message = f"line item of order {names[index]!r}, whose first row was rejected"
        quarantine.append((line, raw, message))
    kept = order_at[order_ok[order_at]]
    clean = frame.filter(_at(len(frame), kept)).with_columns(_rows=pl.Series(rows_per_order[group[kept]], dtype=pl.Int64))
    clean = clean.with_columns(_line_items=pl.col("_rows"))
    # Line items at the head of this chunk belong to the previous chunk's order.
    head = int(rows_per_order[0])
    continued = head if carry.ok else 0
    if len(names):
        carry.name = names[-1]
        carry.ok = bool(order_ok[-1])
        if len(order_at):
            carry.line = int(frame["_line"][int(order_at[-1])])
    return clean, quarantine, continued
