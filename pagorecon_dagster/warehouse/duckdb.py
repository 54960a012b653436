"""One way to open the warehouse and one way to run a `dbt_like_sql/` model."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar
from functools import lru_cache
from importlib import resources
from pathlib import Path

import duckdb

from pagorecon_dagster.reconciliation import catalog as status_catalog
from pagorecon_dagster.reconciliation import evidence_catalog
from pagorecon_dagster.warehouse.lake import Lake, WarehouseMissing, retrying
from pagorecon_dagster.warehouse.lake import cursor as lake_cursor

__all__ = ["Lake", "WarehouseMissing", "connect", "transaction", "atomically"]

def _sql_dir() -> Path:
    """`dbt_like_sql/`: shipped inside the package as `_sql/` by the wheel (pyproject.toml maps the
    top-level folder there); read from the top of the source tree in a checkout or editable install."""
    package = Path(__file__).resolve().parents[1]
    shipped = package / "_sql"
    return shipped if shipped.is_dir() else package.parent / "dbt_like_sql"


SQL_DIR = _sql_dir()


# Definition metadata of an asset: every warehouse table or view it writes (docs/operations.md, Tables).
WRITES = "pagorecon/writes"
# The only tables no asset writes: the warehouse's record of how it was built and run, not data a
# person reads (docs/operations.md, Tables). A reference table seeded with the schema goes here too.
BOOKKEEPING_TABLES = {
    "schema_version": "the version of the DDL this warehouse has",
    "schema_migrations": "the numbered migrations applied, once each",
    "counters": "numbers handed out once each (file_seq), and whose turn it is to append to the audit chain",
    "ingested_files": "every landing file read, by every landing asset, with its counts or its error",
    "quarantine": "every rejected row, with every error found",
    "current_state_marks": "how far each current-state table has read its raw rows",
    "touched_references": "references to recount at the next reference_counts refresh",
    "changed_days": "the store x days each loaded landing file may change, for the landing sensor's reruns",
    "fx_fetches": "every fetch of the SBS rates from the BCRP by the hourly sync, with its error",
    "audit_log": "every refund decision, hash-chained, from runs and from the refunds commands",
    "audit_checkpoints": "the sealed summary of the audit entries retention removed; the chain continues from the last",
    "retention_runs": "what each retention apply archived or removed, per landing file or table",
    "status_catalog": "reference: the statuses and reasons the SQL joins, seeded with the schema",
}


def home_lake(home: Path | str) -> Lake:
    """The warehouse of the home at `home` (its pagorecon.yaml's `warehouse:` block)."""
    from pagorecon_dagster.config import load_settings

    return load_settings(Path(home)).lake


def connect_lake(lake: Lake, *, read_only: bool = False, memory_limit: str | None = None,
                 private: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection on the lake (see `connect`), to close when done. A read-write open of a home
    that still has an earlier version's warehouse.duckdb moves it into the lake first (warehouse/migrate.py)."""
    legacy = lake.legacy_file and os.path.isfile(lake.legacy_file)   # one stat: the usual answer is no
    if legacy and not read_only:
        from pagorecon_dagster.warehouse.migrate import migrate_at_first_open
        migrate_at_first_open(lake)
    try:
        con, state = lake_cursor(lake, read_only=read_only, memory_limit=(memory_limit or "").strip() or None,
                                 private=private)
    except WarehouseMissing:
        if legacy:
            raise WarehouseMissing(f"this home's warehouse is still {lake.legacy_file}, as earlier versions kept it: "
                                   "run `pagorecon migrate` (or any `pagorecon run`) to move it into the lake") from None
        raise
    except duckdb.Error as exc:
        if memory_limit and "memory" in str(exc).lower():
            raise ValueError(f"{MEMORY_LIMIT_ENV}={memory_limit!r} is not a memory size DuckDB understands "
                             f"(like 2600MB or 3GB): {exc}") from None
        raise
    try:
        if not read_only:
            _ensure_schema(con, state)
    except BaseException:
        con.close()
        raise
    return con


@contextlib.contextmanager
def connect(lake: Lake, *, read_only: bool = False, memory_limit: str | None = None,
            private: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (`settings.lake`). Read-write creates its tables; `read_only=True`
    creates nothing, writes nothing and refuses any statement that writes. Neither ever waits for
    another process: each transaction reads the snapshot committed when it began.
    `memory_limit` (like 2600MB) caps DuckDB's memory; the `Warehouse` resource passes its own.
    `private=True` gives the connection a DuckDB of its own (for settings that hold instance-wide)."""
    if not isinstance(lake, Lake):
        raise TypeError(f"connect() takes the warehouse's Lake (settings.lake), not {lake!r}")
    con = connect_lake(lake, read_only=read_only, memory_limit=memory_limit, private=private)
    try:
        yield con
    finally:
        con.close()


# The variable the `Warehouse` resource reads the memory limit from (named in errors).
MEMORY_LIMIT_ENV = "PAGORECON_DUCKDB_MEMORY_LIMIT"


# Each domain that owns tables declares them in its own schema.sql (idempotent DDL).
SCHEMA_PACKAGES = ("warehouse", "refunds", "alerts")


@lru_cache(maxsize=1)
def schema_sql() -> str:
    parts = []
    for package in SCHEMA_PACKAGES:
        ddl = resources.files(f"pagorecon_dagster.{package}").joinpath("schema.sql")
        if ddl.is_file():
            parts.append(ddl.read_text(encoding="utf-8"))
    # The English evidence of `recon_items`, generated from the one message catalog.
    parts.append(evidence_catalog.macro_sql())
    return "\n".join(parts)


_schema_lock = threading.Lock()


def _ensure_schema(con: duckdb.DuckDBPyConnection, state: dict) -> None:
    """Apply the DDL and seed `status_catalog` (reconciliation/catalog.py) when this warehouse has
    not seen this version of them yet, then the migrations it has not had. Two processes creating
    one warehouse at once conflict on its tables: the loser's transaction runs again and finds
    them made."""
    with _schema_lock:
        ddl = schema_sql()
        # a new counter is part of the schema: a warehouse without its row gets it (seed_counters)
        version = hashlib.sha256((ddl + status_catalog.fingerprint() + " ".join(sorted(COUNTERS))).encode("utf-8")).hexdigest()
        shipped = (version, tuple(m.name for m in migrations()))
        if state.get("schema") == shipped:  # checked once per process and lake: the check costs catalog reads
            return

        def current() -> bool:
            if table_type(con, "schema_version") is None:
                return False
            return bool(con.execute("SELECT count(*) FROM schema_version WHERE sha256 = ?", [version]).fetchone()[0])

        if not current():
            def create(con: duckdb.DuckDBPyConnection) -> None:
                new = table_type(con, "schema_version") is None
                con.execute("CREATE TABLE IF NOT EXISTS schema_version (sha256 VARCHAR NOT NULL)")
                con.execute(ddl)
                if new:  # made by this version's DDL: it needs none of the migrations shipped with it
                    for migration in migrations():
                        con.execute("INSERT INTO schema_migrations VALUES (?, now())", [migration.name])
                for name in PARTITIONS:
                    partition(con, name)
                seed_counters(con)
                status_catalog.seed(con)
                for name in lake_tables(con):
                    give_statistics(con, name)
            atomically(con, create)
            atomically(con, lambda con: [forget_statistics_rows(con, name) for name in lake_tables(con)])
        apply_migrations(con)
        if not current():
            def record(con: duckdb.DuckDBPyConnection) -> None:
                # The items view reads columns (some added by migrations) and macros of this version: a
                # warehouse read before its next reconciliation gets the view of this version too.
                if table_type(con, "recon_items") == "VIEW":
                    build_view(con, "recon_items")
                # Recorded last: a crash before this line applies the (idempotent) DDL again next time.
                con.execute("DELETE FROM schema_version")
                con.execute("INSERT INTO schema_version VALUES (?)", [version])
            atomically(con, record)
        state["schema"] = shipped


# The big tables are partitioned (DuckLake writes each partition's rows to their own files): a run
# rewriting one store's days deletes from that store's files only, so runs of different stores
# commit at the same time without conflicting, and reads of one store skip the others' files.
PARTITIONS = {
    "statement_rows": "store_id",
    "order_rows": "store_id",
    "recon_item_rows": "store_id, year(business_date), month(business_date)",
    "recon_daily_summary": "store_id, year(business_date), month(business_date)",
}


def partition(con: duckdb.DuckDBPyConnection, name: str) -> None:
    if name in PARTITIONS and table_type(con, name) == "BASE TABLE":
        con.execute(f"ALTER TABLE {name} SET PARTITIONED BY ({PARTITIONS[name]})")


# DuckLake keeps no statistics for a table that never held a row, and looks for them again, one
# catalog query per column, on every query that reads it: reading an empty 20-column table costs
# some 100 ms each time where a table that once held a row costs 10 ms. A row added and removed in
# one transaction leaves none (and with data inlining on it left wrong ones: warehouse/lake.py). So
# the schema's transaction gives each empty table a marked row, and the next transaction removes
# them all: the table keeps the statistics of a table that held a row and was emptied. A crash in
# between leaves marked rows that the next schema check removes before anything else runs.
STATISTICS_MARK = "pagorecon: a row that gives an empty table statistics, removed at once"


def give_statistics(con: duckdb.DuckDBPyConnection, name: str) -> None:
    if con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]:
        return
    values = ", ".join(_placeholder(str(kind)) for _, kind, *_ in _columns(con, name))
    con.execute(f"INSERT INTO {name} VALUES ({values})")


def forget_statistics_rows(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Remove the rows give_statistics added to `name` (each column equal to its placeholder)."""
    match = " AND ".join(f'"{column}" IS NOT DISTINCT FROM {_placeholder(str(kind))}' for column, kind, *_ in _columns(con, name))
    con.execute(f"DELETE FROM {name} WHERE {match}")


def _columns(con: duckdb.DuckDBPyConnection, name: str) -> list:
    return con.execute(f"SELECT * FROM {name} LIMIT 0").description


def _placeholder(kind: str) -> str:
    kind = kind.upper()
    if kind == "JSON":
        return "'null'"
    if "CHAR" in kind or kind in ("VARCHAR", "STRING", "TEXT"):
        return "'" + STATISTICS_MARK + "'"
    if kind.startswith("TIMESTAMP"):
        return "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
    if kind == "DATE":
        return "DATE '2000-01-01'"
    if kind.startswith("BOOL"):
        return "false"
    if kind.startswith(("DECIMAL", "NUMERIC", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "DOUBLE", "FLOAT", "REAL", "UBIGINT", "UINTEGER")):
        return "0"
    return "NULL"


def lake_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                      "WHERE table_catalog = current_database() AND table_type = 'BASE TABLE'").fetchall()]


# -- ids without sequences -------------------------------------------------------------------------

# DuckLake has no sequences and no unique constraints. A number that must never be handed out twice
# comes from a row of `counters`: taking one rewrites the row, so two transactions that take from
# one counter conflict at commit and the loser runs again (`atomically`) with the next number.
EMAIL_TURNS = "email_turns"
COUNTERS = {
    "file_seq": "ingested_files.file_seq: the order landing files are applied in",
    "audit_turns": "appends to the refunds audit chain, one at a time (refunds/audit.py)",
    EMAIL_TURNS: "report emails recorded as being sent, one run at a time (delivery/send.py)",
}


def seed_counters(con: duckdb.DuckDBPyConnection) -> None:
    """Give every counter its row, starting after the highest number already used."""
    starts = {"file_seq": ("ingested_files", "file_seq")}
    for name in COUNTERS:
        if con.execute("SELECT count(*) FROM counters WHERE name = ?", [name]).fetchone()[0]:
            continue
        table, column = starts.get(name, (None, None))
        start = con.execute(f"SELECT coalesce(max({column}), 0) FROM {table}").fetchone()[0] if table and table_type(con, table) else 0
        con.execute("INSERT INTO counters VALUES (?, ?)", [name, start])


def next_value(con: duckdb.DuckDBPyConnection, name: str, count: int = 1) -> int:
    """The counter's next number (the first of the next `count`), taken inside the caller's
    transaction (never handed out twice: see COUNTERS)."""
    row = con.execute("SELECT value FROM counters WHERE name = ?", [name]).fetchone()
    if row is None:
        raise RuntimeError(f"the warehouse has no counter {name!r}: open it read-write once to create it")
    con.execute("UPDATE counters SET value = value + ? WHERE name = ?", [count, name])
    return int(row[0]) + 1


MIGRATIONS = "pagorecon_dagster.warehouse.migrations"


@dataclass(frozen=True)
class Migration:
    """`warehouse/migrations/NNNN_name.sql` (statements) or `.py` (a `migrate(con)` function)."""

    name: str   # the file name without its suffix: NNNN_name
    suffix: str

    def apply(self, con: duckdb.DuckDBPyConnection) -> None:
        if self.suffix == ".sql":
            con.execute(resources.files(MIGRATIONS).joinpath(self.name + ".sql").read_text(encoding="utf-8"))
        else:
            importlib.import_module(f"{MIGRATIONS}.{self.name}").migrate(con)


@lru_cache(maxsize=1)
def migrations() -> tuple[Migration, ...]:
    """Every migration shipped, in the order of its number."""
    found = []
    for entry in resources.files(MIGRATIONS).iterdir():
        stem, dot, suffix = entry.name.partition(".")
        if dot and "." + suffix in (".sql", ".py") and stem[:4].isdigit() and stem[4:5] == "_":
            found.append(Migration(stem, "." + suffix))
    numbers = [m.name[:4] for m in found]
    duplicated = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicated:
        raise RuntimeError(f"warehouse/migrations: two migrations share the number {', '.join(duplicated)}; renumber one")
    return tuple(sorted(found, key=lambda m: m.name))


def apply_migrations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply, in order, each migration `schema_migrations` does not record yet, each with its record
    in one transaction: an older warehouse upgrades once, a new one records them all on its first
    open (each migration leaves a warehouse that does not need it as it is). Returns the names applied."""
    if table_type(con, "schema_migrations") is None:  # a warehouse older than migrations (the DDL creates it)
        con.execute("CREATE TABLE schema_migrations (name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
    applied = []
    for migration in migrations():
        def apply(con: duckdb.DuckDBPyConnection, migration: Migration = migration) -> bool:
            # Read inside the transaction: another process may have applied it since.
            if con.execute("SELECT count(*) FROM schema_migrations WHERE name = ?", [migration.name]).fetchone()[0]:
                return False
            migration.apply(con)
            con.execute("INSERT INTO schema_migrations VALUES (?, now())", [migration.name])
            return True
        if atomically(con, apply):
            applied.append(migration.name)
    return applied


@lru_cache(maxsize=None)
def model_sql(name: str) -> str:
    path = SQL_DIR / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"SQL model {name!r} not found at {path}")
    return path.read_text(encoding="utf-8").strip().rstrip(";")


def set_variables(con: duckdb.DuckDBPyConnection, variables: Mapping[str, object]) -> None:
    """Bind a model's parameters the way a person would in the DuckDB shell: `SET VARIABLE`."""
    for key, value in variables.items():
        con.execute(f"SET VARIABLE {key} = ?", [value])


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Everything inside commits together, or nothing does. A commit that conflicts with another
    process's raises; use `atomically` where the work can simply run again."""
    con.execute("BEGIN")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.TransactionException:  # a failed commit has already ended it
            pass
        raise


T = TypeVar("T")


def atomically(
    con: duckdb.DuckDBPyConnection,
    body: Callable[[duckdb.DuckDBPyConnection], T],
    within: Callable[[duckdb.DuckDBPyConnection], contextlib.AbstractContextManager] = transaction,
) -> T:
    """`body(con)` in one transaction; when its commit conflicts with another process's (DuckLake
    detects it), it is rolled back and runs again, bounded, with backoff (warehouse/lake.py).
    `within` is the transaction each attempt runs in (refunds/state.py adds its audit anchor)."""
    def attempt() -> T:
        with within(con):
            return body(con)
    return retrying(attempt)


def build_table(con: duckdb.DuckDBPyConnection, name: str, variables: Mapping[str, object] = {}) -> int:
    """Materialize model `name` as a whole table (CREATE OR REPLACE), atomically."""
    set_variables(con, variables)
    def build(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"CREATE OR REPLACE TABLE {name} AS {model_sql(name)}")
    atomically(con, build)
    return con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]


@dataclass(frozen=True)
class Refresh:
    """What `refresh_latest` did: `full` rebuild, `incremental` (only later files read) or `unchanged`."""

    mode: str
    rows: int      # rows in the table after the refresh
    written: int   # rows written by this refresh


def refresh_latest(
    con: duckdb.DuckDBPyConnection,
    name: str,
    raw_table: str,
    keys: Sequence[str],
    on_change: Callable[[duckdb.DuckDBPyConnection, str, str | None], None] | None = None,
) -> Refresh:
    """Keep latest-version model `name` (one row per `keys`, the row of the latest file) up to date
    from `raw_table`. Files are applied in `file_seq` order, so rows of files newer than the last
    refresh replace their keys' rows and nothing else changes; the model reads only those rows when
    given `after_file_seq`. The table is rebuilt whole when that shortcut could be wrong: first
    refresh, a changed model or raw table, or raw rows of applied files added or removed since.
    `on_change(con, name, fresh)` runs inside the transaction before rows are replaced: `fresh`
    names the temp table of the new versions (the replaced ones are still in `name`), or is None
    for a rebuild."""
    sql = model_sql(name)
    columns = con.execute(
        "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) "
        "FROM information_schema.columns WHERE table_name = ? AND table_catalog = current_database()", [raw_table]
    ).fetchone()[0]
    fingerprint = hashlib.sha256(f"{sql}\n{raw_table}({columns})".encode("utf-8")).hexdigest()
    def refresh(con: duckdb.DuckDBPyConnection) -> tuple[str, int | None]:
        last_seq, raw_rows = con.execute(f"SELECT coalesce(max(file_seq), 0), count(*) FROM {raw_table}").fetchone()
        mark = con.execute("SELECT fingerprint, file_seq, raw_rows FROM current_state_marks WHERE model = ?", [name]).fetchone()
        incremental = (
            mark is not None and mark[0] == fingerprint and table_type(con, name) == "BASE TABLE"
            and con.execute(f"SELECT count(*) FROM {raw_table} WHERE file_seq <= ?", [mark[1]]).fetchone()[0] == mark[2]
        )
        if incremental and last_seq <= mark[1]:
            mode, written = "unchanged", 0
        elif incremental:
            set_variables(con, {"after_file_seq": mark[1]})
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name}_fresh AS {sql}")
            if on_change is not None:
                on_change(con, name, f"{name}_fresh")
            same_key = " AND ".join(f"t.{key} = f.{key}" for key in keys)
            con.execute(f"DELETE FROM {name} AS t USING {name}_fresh AS f WHERE {same_key}")
            written = con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM {name}_fresh").fetchone()[0]
            con.execute(f"DROP TABLE {name}_fresh")
            mode = "incremental"
        else:
            # Store by store (the keys begin with the store): a rebuild holds one store's rows in
            # memory, not every store's. Stores in order, each sorted by the model: the same table.
            con.execute("RESET VARIABLE after_file_seq")
            stores = [row[0] for row in con.execute(f"SELECT DISTINCT store_id FROM {raw_table} ORDER BY store_id").fetchall()]
            for i, store in enumerate(stores or [None]):
                set_variables(con, {"only_store": store})
                con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}" if i == 0 else f"INSERT INTO {name} {sql}")
            con.execute("RESET VARIABLE only_store")
            if on_change is not None:
                on_change(con, name, None)
            mode, written = "full", None
        con.execute("DELETE FROM current_state_marks WHERE model = ?", [name])
        con.execute("INSERT INTO current_state_marks VALUES (?, ?, ?, ?)", [name, fingerprint, last_seq, raw_rows])
        return mode, written

    try:
        mode, written = atomically(con, refresh)
    finally:
        con.execute("RESET VARIABLE after_file_seq")
        con.execute("RESET VARIABLE only_store")
    rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
    return Refresh(mode, int(rows), int(rows if written is None else written))


def build_view(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Model `name` as a view: nothing stored, computed when read. Inside the caller's transaction
    (a schema change, a migration), or on its own; a run replacing it goes through `atomically`."""
    con.execute(f"CREATE OR REPLACE VIEW {name} AS {model_sql(name)}")


def table_type(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """`BASE TABLE`, `VIEW`, or None when the warehouse has no relation of that name. Asked of the
    binder: DuckLake answers information_schema from its whole catalog, some 50 ms a question."""
    if not name.isidentifier():
        raise ValueError(f"not a table name: {name!r}")
    try:
        con.execute(f"SELECT * FROM {name} LIMIT 0")
    except duckdb.CatalogException:
        return None
    view = con.execute("SELECT count(*) FROM duckdb_views() WHERE database_name = current_database() AND view_name = ?",
                       [name]).fetchone()[0]
    return "VIEW" if view else "BASE TABLE"


def note_commit(con: duckdb.DuckDBPyConnection, message: str, info: Mapping[str, object]) -> None:
    """Label the snapshot the current transaction commits: `commit_message` and `commit_extra_info`
    (JSON) of `ducklake_snapshots()`, where a reader finds which commit did what."""
    con.execute("CALL ducklake_set_commit_message(current_database(), 'pagorecon', ?, extra_info => ?)",
                [message, json.dumps(dict(info), default=str, sort_keys=True)])


def replace_window(
    con: duckdb.DuckDBPyConnection,
    name: str,
    window_predicate: str,
    variables: Mapping[str, object] = {},
    parts: Sequence[Mapping[str, object]] = (),
    note: tuple[str, Mapping[str, object]] | None = None,
) -> int:
    """Partitioned model: delete the window's rows, insert the model's rows for it, in one
    transaction. The model's SELECT filters itself to the window through its variables. With
    `parts` (variables that cut the window into pieces, e.g. one per store), the model's rows are
    inserted piece by piece, so that only one piece is in memory at a time. `note` (message, info)
    labels the commit's snapshot (`note_commit`)."""
    sql = model_sql(name)

    def replace(con: duckdb.DuckDBPyConnection) -> int:
        set_variables(con, variables)
        if note is not None:
            note_commit(con, *note)
        if table_type(con, name) is None:
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM ({sql}) WHERE false")
            partition(con, name)
        con.execute(f"DELETE FROM {name} WHERE {window_predicate}")
        inserted = 0
        for part in parts or [variables]:
            set_variables(con, part)
            inserted += con.execute(f"INSERT INTO {name} BY NAME {sql}").fetchone()[0]
        return int(inserted)

    return atomically(con, replace)
