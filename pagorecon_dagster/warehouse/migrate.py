"""`pagorecon migrate`, also run at the first read-write open of a home that still has the single
DuckDB file earlier versions kept the warehouse in (docs/operations.md, Moving a home from
warehouse.duckdb).

The file is never changed: a copy of it is brought up to this version's tables (the DDL, then the
migrations it has not had, as opening it did), every table is copied into the lake in one
transaction with its rows counted on both sides, and only then is the file renamed
`warehouse.duckdb.migrated-<date>`. The lake keeps its own bookkeeping (schema version, migrations,
the status catalog) and views; the `file_seq` counter continues after the file's sequence."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

import duckdb

from pagorecon_dagster.core.lima import LIMA_TZ
from pagorecon_dagster.warehouse import duckdb as warehouse
from pagorecon_dagster.warehouse.lake import Lake, _quote
from pagorecon_dagster.warehouse.lake import cursor as lake_cursor

LEGACY = "legacy_warehouse"   # the alias the copy is attached under
# What the lake makes for itself when it is created: never copied from the file.
OWN_TABLES = ("schema_version", "schema_migrations", "counters", "status_catalog")


class MigrationRefused(Exception):
    """The file cannot be moved as things are; the message says why and what to do."""


@dataclass(frozen=True)
class Moved:
    table: str
    rows_old: int
    rows_lake: int


def legacy_file(lake: Lake) -> Path | None:
    """The home's warehouse.duckdb when it is still there to move (a file-exists check)."""
    if lake.legacy_file and Path(lake.legacy_file).is_file():
        return Path(lake.legacy_file)
    return None


def migrate_at_first_open(lake: Lake) -> None:
    """Called by every read-write open: moves warehouse.duckdb in when the home still has one.
    One process moves it; the others wait for it, then find it gone."""
    if legacy_file(lake) is None:
        return
    print(f"pagorecon: moving {lake.legacy_file} into the lake ({lake}) once", file=sys.stderr)
    migrate(lake, out=sys.stderr, automatic=True)


def migrate(lake: Lake, *, force: bool = False, out: TextIO = sys.stdout, automatic: bool = False) -> list[Moved]:
    """Move the home's warehouse.duckdb into `lake`; refused when the lake already has data,
    unless `force` (then the file's tables replace the lake's). Prints one line a table."""
    if not lake.legacy_file:
        raise MigrationRefused(f"{lake} belongs to no home with a warehouse.duckdb")
    source = Path(lake.legacy_file)
    with _one_at_a_time(Path(lake.temp_directory)):
        if not source.is_file():
            if automatic:
                return []  # another process moved it while this one waited
            raise MigrationRefused(f"no {source} to move: this home's warehouse is already the lake ({lake})")
        with tempfile.TemporaryDirectory(prefix="migrate-", dir=lake.temp_directory) as scratch:
            copy = Path(scratch) / source.name
            shutil.copyfile(source, copy)
            wal = source.with_name(source.name + ".wal")
            if wal.is_file():  # committed changes not yet checkpointed into the file
                shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
            moved = _copy_into(lake, source, copy, force=force, automatic=automatic)
        done = _set_aside(source)
    width = max([len(m.table) for m in moved] + [5])
    print(f"{'table'.ljust(width)}  {'rows in old':>12}  {'rows in lake':>12}", file=out)
    for m in moved:
        print(f"{m.table.ljust(width)}  {m.rows_old:>12}  {m.rows_lake:>12}", file=out)
    print(f"Moved {len(moved)} table(s), {sum(m.rows_lake for m in moved)} row(s), into {lake}; "
          f"the old file is now {done} (kept, never read again).", file=out)
    return moved


@contextlib.contextmanager
def _one_at_a_time(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _copy_into(lake: Lake, source: Path, copy: Path, *, force: bool, automatic: bool) -> list[Moved]:
    con, state = lake_cursor(lake, read_only=False, memory_limit=None, private=True)
    try:
        warehouse._ensure_schema(con, state)
        own = con.execute("SELECT current_database()").fetchone()[0]
        try:
            con.execute(f"ATTACH {_quote(str(copy))} AS {LEGACY}")
        except duckdb.Error as exc:
            raise MigrationRefused(_unreadable(source, exc)) from None
        try:
            con.execute(f"USE {LEGACY}")
            con.execute(warehouse.schema_sql())   # as earlier versions opened it: the DDL, then the migrations
            warehouse.apply_migrations(con)
            sequence = con.execute("SELECT coalesce(max(last_value), 0) FROM duckdb_sequences() "
                                   "WHERE database_name = current_database() AND sequence_name = 'file_seq'").fetchone()[0]
            con.execute(f"USE {own}")
            tables = [t for (t,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' ORDER BY table_name",
                [LEGACY]).fetchall() if t not in OWN_TABLES]
            views = [v for (v,) in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE database_name = ? AND schema_name = 'main' AND NOT internal",
                [LEGACY]).fetchall()]
            filled = [t for t in tables if warehouse.table_type(con, t) == "BASE TABLE"
                      and con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]]
            if filled and not force:
                what = "pagorecon migrate --force" if not automatic else "`pagorecon migrate --force` (or move it out of the home)"
                raise MigrationRefused(
                    f"the lake ({lake}) already has data ({', '.join(filled[:5])}{', ...' if len(filled) > 5 else ''}) "
                    f"and {source} is still there: to replace the lake's tables with the file's, run {what}")

            def copy_all(con: duckdb.DuckDBPyConnection) -> list[Moved]:
                moved = []
                for table in tables:
                    if warehouse.table_type(con, table) is None:
                        con.execute(f"CREATE TABLE {table} AS SELECT * FROM {LEGACY}.{table} WHERE false")
                        warehouse.partition(con, table)
                    columns = ", ".join(f'"{c}"' for (c,) in con.execute(
                        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND table_name = ? ORDER BY column_index",
                        [LEGACY, table]).fetchall())
                    con.execute(f"DELETE FROM {table}")
                    con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {LEGACY}.{table}")
                    old = con.execute(f"SELECT count(*) FROM {LEGACY}.{table}").fetchone()[0]
                    new = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                    if old != new:
                        raise MigrationRefused(f"{table}: {old} row(s) in {source} but {new} in the lake after copying; nothing was moved")
                    moved.append(Moved(table, int(old), int(new)))
                for view in views:
                    if (warehouse.SQL_DIR / f"{view}.sql").is_file():
                        warehouse.build_view(con, view)
                # the next file continues after every number the file's sequence handed out
                con.execute("DELETE FROM counters WHERE name = 'file_seq'")
                warehouse.seed_counters(con)
                con.execute("UPDATE counters SET value = greatest(value, ?) WHERE name = 'file_seq'", [sequence])
                return moved

            return warehouse.atomically(con, copy_all)
        finally:
            con.execute(f"USE {own}")
            con.execute(f"DETACH {LEGACY}")
    finally:
        con.close()


def _unreadable(source: Path, exc: duckdb.Error) -> str:
    text = str(exc)
    if "newer version" in text.lower() or "version number" in text.lower():
        return (f"{source} was written by a newer DuckDB than this one ({duckdb.__version__}), which cannot read it. "
                f"Convert it once with the DuckDB that wrote it (docs/operations.md, Moving a home from warehouse.duckdb), "
                f"then run `pagorecon migrate` again. DuckDB said: {text.splitlines()[0]}")
    return f"{source} cannot be read as a DuckDB database: {text.splitlines()[0]}"


def _set_aside(source: Path) -> Path:
    """Rename the moved file (and its WAL), never delete it."""
    stem = f"{source.name}.migrated-{dt.datetime.now(ZoneInfo(LIMA_TZ)).date().isoformat()}"
    target, n = source.with_name(stem), 1
    while target.exists():
        n += 1
        target = source.with_name(f"{stem}-{n}")
    source.rename(target)
    wal = source.with_name(source.name + ".wal")
    if wal.is_file():
        wal.rename(target.with_name(target.name + ".wal"))
    return target
