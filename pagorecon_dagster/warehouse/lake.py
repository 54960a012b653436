"""Where the warehouse lives: a DuckLake (Parquet data files plus a SQL catalog).

The embedded default keeps the catalog in a SQLite file and the data files under the home, so a
laptop needs no server and several processes of one machine share it. Production keeps the catalog
in PostgreSQL and the data files in a folder every worker mounts or in an S3-compatible bucket
(`warehouse:` in pagorecon.yaml; docs/operations.md, The warehouse). Either way each process opens
one in-memory DuckDB with the lake attached, and every `connect()` is a cursor on it: the
extensions load once per process, and no process ever holds a lock another one waits for.

DuckLake detects conflicting commits (two transactions deleting from one data file, replacing one
table, ...); `atomically` runs a transaction again when its commit lost such a race.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import duckdb
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

if TYPE_CHECKING:
    from pagorecon_dagster.config import WarehouseConfig

# The alias the lake is attached under in every connection (and in the documented shell ATTACH).
ALIAS = "lake"
LOCAL_CATALOG = "warehouse/catalog.sqlite"
LOCAL_DATA = "warehouse/data"
TEMP_DIRECTORY = "warehouse/tmp"
# The single DuckDB file earlier versions kept the warehouse in, moved into the lake once
# (warehouse/migrate.py).
LEGACY_FILE = "warehouse.duckdb"

# The extension wheels from PyPI (pyproject.toml pins DuckDB to the version they are built for);
# nothing is ever downloaded at run time.
EXTENSION_PACKAGES = {
    "ducklake": "duckdb_extension_ducklake",
    "sqlite_scanner": "duckdb_extension_sqlite_scanner",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "httpfs": "duckdb_extension_httpfs",
}


class WarehouseMissing(Exception):
    """A read-only command found no warehouse: nothing has been run in this home yet."""


@dataclass(frozen=True)
class Lake:
    """One warehouse: its catalog (`sqlite:<file>` or `postgres:<libpq string>`) and data path, and
    the home it belongs to (empty for a scratch lake): what sits beside the warehouse, such as the
    refunds audit anchor, lives there."""

    catalog: str
    data_path: str
    temp_directory: str
    s3: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=True)   # secret; never printed
    legacy_file: str = ""   # the home's warehouse.duckdb of earlier versions, moved in at first open
    home: str = ""          # the home a local lake lives in (its audit anchor and reports are beside it)

    @classmethod
    def from_config(cls, config: "WarehouseConfig", home: Path, environ: Mapping[str, str] = {}) -> "Lake":
        home = Path(home)
        catalog = (f"postgres:{config.postgres}" if config.catalog == "postgres"
                   else f"sqlite:{home / LOCAL_CATALOG}")
        data = config.data_path or str(home / LOCAL_DATA)
        if not data.endswith("/"):
            data += "/"
        s3 = tuple((key, environ[name]) for key, name in S3_VARIABLES.items() if environ.get(name))
        return cls(catalog, data, str(home / TEMP_DIRECTORY), s3 if data.startswith("s3://") else (),
                   legacy_file=str(home / LEGACY_FILE), home=str(home))

    @classmethod
    def in_folder(cls, folder: Path | str) -> "Lake":
        """A local lake with its catalog and data in `folder` (a scratch warehouse)."""
        folder = Path(folder)
        return cls(f"sqlite:{folder / 'catalog.sqlite'}", f"{folder / 'data'}/", str(folder / "tmp"))

    @property
    def kind(self) -> str:
        return self.catalog.split(":", 1)[0]

    @property
    def local_file(self) -> Path | None:
        return Path(self.catalog.split(":", 1)[1]) if self.kind == "sqlite" else None

    def __str__(self) -> str:
        return f"DuckLake {self.catalog} (data {self.data_path})"

    def attach_sql(self, *, read_only: bool = False, alias: str = ALIAS) -> str:
        """The ATTACH a person runs in the DuckDB shell (after loading the extensions) to read it."""
        options = [f"DATA_PATH {_quote(self.data_path)}"] + (["READ_ONLY"] if read_only else [f"DATA_INLINING_ROW_LIMIT {INLINE_ROWS}"])
        if self.kind == "sqlite":
            # The catalog remembers the data path it was created with; a local lake moves with its
            # home (a copy, a backup restored elsewhere), so the configured path wins. A shared
            # catalog keeps the path every worker agreed on: a worker configured otherwise fails.
            options.append("OVERRIDE_DATA_PATH TRUE")
        return f"ATTACH {_quote('ducklake:' + self.catalog)} AS {alias} ({', '.join(options)})"

    def extensions(self) -> list[str]:
        needed = ["ducklake", "sqlite_scanner" if self.kind == "sqlite" else "postgres_scanner"]
        if self.data_path.startswith(("s3://", "http://", "https://")):
            needed.append("httpfs")
        return needed


# Data inlining (small inserts and deletes kept in the catalog instead of Parquet files) is off.
# DuckDB 1.5.5's DuckLake answers min()/max() of a whole table from column statistics, and rows
# inserted and deleted in one transaction while inlined stay in those statistics: `min()` of a table
# whose only row was removed in the transaction that added it returned that row's value (an empty
# `fx_fetches` raised an FX_RATE_MISSING for every store). Inlined deletes have open bugs of the same
# kind in that version (rows counted twice or coming back after a flush). Every write is a Parquet
# file; `pagorecon maintain` merges the small ones. tests/test_lake_correctness.py holds the cases.
INLINE_ROWS = 0

# Where S3 credentials come from when the data path is a bucket: the secret's field <- the variable.
S3_VARIABLES = {
    "KEY_ID": "PAGORECON_S3_KEY_ID",
    "SECRET": "PAGORECON_S3_SECRET",
    "REGION": "PAGORECON_S3_REGION",
    "ENDPOINT": "PAGORECON_S3_ENDPOINT",
}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def extension_path(name: str) -> Path:
    spec = importlib.util.find_spec(EXTENSION_PACKAGES[name])
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the DuckDB extension {name} is not installed: pip install "
                           f"{EXTENSION_PACKAGES[name].replace('_', '-')}=={duckdb.__version__}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "extensions" / f"v{duckdb.__version__}"
    found = sorted(folder.glob(f"{name}.duckdb_extension"))
    if not found:
        raise RuntimeError(f"the installed {EXTENSION_PACKAGES[name]} has no build for DuckDB {duckdb.__version__} "
                           f"under {folder}: install the wheel of the same version as duckdb")
    return found[0]


# -- one DuckDB per process, each lake attached once ------------------------------------------------

@dataclass
class _Attached:
    alias: str
    stamp: tuple | None          # the local catalog file's identity when attached
    state: dict = field(default_factory=dict)   # what warehouse/duckdb.py has done on it (schema checked)


_bases: dict[tuple, duckdb.DuckDBPyConnection] = {}
_attached: dict[tuple, _Attached] = {}
_lakes: dict[str, Lake] = {}   # alias -> the lake attached under it
_lock = threading.RLock()
_aliases = itertools.count(1)


def cursor(lake: Lake, *, read_only: bool, memory_limit: str | None,
           private: bool = False) -> tuple[duckdb.DuckDBPyConnection, dict]:
    """A new connection on `lake` (its default catalog), from this process's DuckDB, and the state
    dict of that attachment. The extensions load once per process and each lake is attached once
    (again if its local catalog file was replaced). `private`: a DuckDB of its own, for a
    connection that changes instance-wide settings; closing the connection closes it."""
    if private:
        base = _instance(lake, memory_limit)
        try:
            attached = _attach(base, lake, read_only)
            base.execute(f"USE {attached.alias}")
            base.execute("SET TimeZone = 'America/Lima'")
        except BaseException:
            base.close()
            raise
        return base, attached.state
    pid = os.getpid()
    with _lock:
        base = _bases.get((pid, memory_limit))
        if base is None:
            base = _bases[(pid, memory_limit)] = _instance(lake, memory_limit)
        key = (pid, memory_limit, lake, read_only)
        attached = _attached.get(key)
        if attached is not None and attached.stamp != _stamp(lake):
            _detach(base, attached)
            attached = None
        if attached is None:
            attached = _attached[key] = _attach(base, lake, read_only)
    con = base.cursor()
    con.execute(f"USE {attached.alias}")
    con.execute("SET TimeZone = 'America/Lima'")
    return con, attached.state


def lake_of(con: duckdb.DuckDBPyConnection) -> Lake | None:
    """The lake a connection from `cursor` is on (None for any other connection)."""
    return _lakes.get(con.execute("SELECT current_database()").fetchone()[0])


def close_all() -> None:
    """Close every DuckDB this process opened."""
    with _lock:
        for con in _bases.values():
            con.close()
        _bases.clear()
        _attached.clear()


def _stamp(lake: Lake) -> tuple | None:
    if lake.local_file is None:
        return None
    try:
        info = lake.local_file.stat()
    except FileNotFoundError:
        return ("missing",)
    return (info.st_dev, info.st_ino)


def _instance(lake: Lake, memory_limit: str | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        for name in EXTENSION_PACKAGES:
            if name in ("ducklake", "sqlite_scanner", "postgres_scanner") or name in lake.extensions():
                con.execute(f"LOAD {_quote(str(extension_path(name)))}")
        con.execute("SET temp_directory = ?", [lake.temp_directory])  # made by DuckDB when it first spills
        if memory_limit:
            con.execute("SET memory_limit = ?", [memory_limit])
        # DuckLake settles races between commits that do not conflict itself; `atomically` reruns
        # the ones that do.
        con.execute("SET ducklake_max_retry_count = 10")
        con.execute("SET ducklake_retry_wait_ms = 20")
        con.execute("SET ducklake_retry_backoff = 1.5")
    except BaseException:
        con.close()
        raise
    return con


def _attach(base: duckdb.DuckDBPyConnection, lake: Lake, read_only: bool) -> _Attached:
    if read_only and lake.local_file is not None and not lake.local_file.exists():
        raise WarehouseMissing(f"no warehouse at {lake.local_file} yet: run `pagorecon run` (or `pagorecon demo`) in this home first")
    if "httpfs" in lake.extensions():
        base.execute(f"LOAD {_quote(str(extension_path('httpfs')))}")
        if lake.s3:
            values = ", ".join(f"{key} {_quote(value)}" for key, value in lake.s3)
            base.execute(f"CREATE OR REPLACE SECRET pagorecon_s3 (TYPE s3, {values})")
        else:
            base.execute("CREATE OR REPLACE SECRET pagorecon_s3 (TYPE s3, PROVIDER credential_chain)")
    if lake.local_file is not None and not read_only:
        lake.local_file.parent.mkdir(parents=True, exist_ok=True)
        _write_ahead_log(lake.local_file)
    if not read_only and not lake.data_path.startswith(("s3://", "http://", "https://")):
        Path(lake.data_path).mkdir(parents=True, exist_ok=True)
    alias = f"{ALIAS}_{next(_aliases)}{'_ro' if read_only else ''}"

    def attach() -> None:
        base.execute(lake.attach_sql(read_only=read_only, alias=alias))
        try:  # a catalog another process is still creating attaches, then has no snapshot yet
            base.execute(f"SELECT count(*) FROM ducklake_snapshots({_quote(alias)})").fetchall()
        except BaseException:
            _detach(base, _Attached(alias, None))
            raise

    try:
        # Processes that start on a new catalog together (a run's steps on several workers) all
        # create its tables: the losers attach again once the winner is done.
        retrying(attach, attempts=8, when=lambda exc: not read_only and (_racing_creation(exc) or _created_meanwhile(exc)))
    except duckdb.Error as exc:
        if read_only and _not_created(exc):
            raise WarehouseMissing(f"no warehouse in {lake} yet: run `pagorecon run` (or `pagorecon demo`) first") from None
        raise
    _lakes[alias] = lake
    return _Attached(alias, _stamp(lake))


def _write_ahead_log(catalog: Path) -> None:
    """Keep the SQLite catalog in write-ahead-log mode (a setting stored in the file): readers and
    writers of several processes then never wait for each other; only two commits at the same
    instant take turns. In SQLite's default mode a transaction merely reading the catalog would
    hold every other process's commit for up to 5 seconds."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(catalog, timeout=30)) as db:
        if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            db.execute("PRAGMA journal_mode = WAL")


def _detach(base: duckdb.DuckDBPyConnection, attached: _Attached) -> None:
    try:
        base.execute(f"DETACH {attached.alias}")
    except duckdb.Error:
        pass


def _racing_creation(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and ("failed to initialize ducklake" in text or "does not exist" in text
                                              or is_conflict(exc))


def _created_meanwhile(exc: BaseException) -> bool:
    """Another process created the catalog's tables while this one did (PostgreSQL's words)."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and ("duplicate key value" in text or "already exists" in text)


def _not_created(exc: Exception) -> bool:
    text = str(exc).lower()
    return "does not exist" in text or "not initialized" in text or "no such table" in text or "read-only" in text


# -- conflicting commits ---------------------------------------------------------------------------

# What DuckDB says when a commit lost to another process's (DuckLake's own retries exhausted), or
# when the SQLite catalog was busy past its timeout.
CONFLICT_MARKERS = ("transaction conflict", "database is locked", "failed to commit ducklake transaction",
                    "failed to query most recent snapshot")
# Bounded: a transaction runs at most this many times, waiting a random, growing pause in between.
ATTEMPTS = 12
MAX_WAIT_SECONDS = 5.0


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.Error) and any(marker in str(exc).lower() for marker in CONFLICT_MARKERS)


T = TypeVar("T")


def retrying(body: Callable[[], T], *, attempts: int = ATTEMPTS, when: Callable[[BaseException], bool] = is_conflict) -> T:
    """Run `body` (one whole transaction: BEGIN to COMMIT) again while it fails on a conflicting
    commit (or another error `when` accepts), at most `attempts` times with full-jitter
    exponential backoff; any other error, or the last conflict, is raised."""
    for attempt in Retrying(retry=retry_if_exception(when), stop=stop_after_attempt(attempts),
                            wait=wait_random_exponential(multiplier=0.05, max=MAX_WAIT_SECONDS), reraise=True):
        with attempt:
            result = body()
    return result
