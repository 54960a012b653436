"""One way to open the warehouse and one way to run a `dbt_like_sql/` model."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import duckdb

from pagorecon_dagster.reconciliation import catalog as status_catalog
from pagorecon_dagster.reconciliation import evidence_catalog

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


class WarehouseMissing(Exception):
    """A read-only command found no warehouse: nothing has been run in this home yet."""


def _lock_error(exc: Exception) -> bool:
    return "lock" in str(exc).lower() and "conflicting" in str(exc).lower()


def _open(path: Path, read_only: bool, wait_seconds: float) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting while another process holds its lock (runs that overlap queue here
    rather than fail); the first wait is said on stderr, naming the holder as DuckDB reports it."""
    deadline = time.monotonic() + wait_seconds
    delay, told = 0.05, False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not _lock_error(exc) or time.monotonic() > deadline:
                raise
            if not told:
                text = str(exc)
                holder = text[text.find("Conflicting lock"):].split(". See also")[0]
                print(f"pagorecon: waiting for the warehouse {path}: {holder}; "
                      f"waiting up to {wait_seconds / 60:g} minutes for it to be released", file=sys.stderr, flush=True)
                told = True
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


@contextlib.contextmanager
def connect(path: Path | str, *, read_only: bool = False, wait_seconds: float = 600.0,
            memory_limit: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse. Read-write creates its tables; `read_only=True` creates nothing, writes
    nothing, shares the file with other readers and refuses any statement that writes.
    `memory_limit` (like 2600MB) caps DuckDB's memory; the `Warehouse` resource passes its own."""
    path = Path(path)
    if read_only and not path.exists():
        raise WarehouseMissing(f"no warehouse at {path} yet: run `pagorecon run` (or `pagorecon demo`) in this home first")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = _open(path, read_only, wait_seconds)
    try:
        con.execute("SET TimeZone = 'America/Lima'")
        _limit_memory(con, memory_limit)
        if not read_only:
            _ensure_schema(con)
        yield con
    finally:
        con.close()


# The variable the `Warehouse` resource reads the memory limit from (named in errors).
MEMORY_LIMIT_ENV = "PAGORECON_DUCKDB_MEMORY_LIMIT"


def _limit_memory(con: duckdb.DuckDBPyConnection, limit: str | None) -> None:
    """DuckDB may use 80% of the machine's RAM; a limit like 2600MB caps it (larger work spills to
    disk and runs a little slower)."""
    limit = (limit or "").strip()
    if not limit:
        return
    try:
        con.execute("SET memory_limit = ?", [limit])
    except duckdb.Error as exc:
        raise ValueError(f"{MEMORY_LIMIT_ENV}={limit!r} is not a memory size DuckDB understands (like 2600MB or 3GB): {exc}") from None


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


def _ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Apply the DDL and seed `status_catalog` (reconciliation/catalog.py) when this warehouse has
    not seen this version of them yet, then the migrations it has not had. Re-running the DDL on
    every open would be slow and makes two connections of one process race on the catalog."""
    ddl = schema_sql()
    version = hashlib.sha256((ddl + status_catalog.fingerprint()).encode("utf-8")).hexdigest()
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (sha256 VARCHAR NOT NULL)")
    if con.execute("SELECT count(*) FROM schema_version WHERE sha256 = ?", [version]).fetchone()[0]:
        apply_migrations(con)
        return
    with transaction(con):
        con.execute(ddl)
        status_catalog.seed(con)
    apply_migrations(con)
    with transaction(con):
        # The items view reads columns (some added by migrations) and macros of this version: a
        # warehouse read before its next reconciliation gets the view of this version too.
        if table_type(con, "recon_items") == "VIEW":
            build_view(con, "recon_items")
        # Recorded last: a crash before this line applies the (idempotent) DDL again next time.
        con.execute("DELETE FROM schema_version")
        con.execute("INSERT INTO schema_version VALUES (?)", [version])


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
        con.execute("CREATE TABLE schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
    done = {name for (name,) in con.execute("SELECT name FROM schema_migrations").fetchall()}
    applied = []
    for migration in migrations():
        if migration.name in done:
            continue
        with transaction(con):
            migration.apply(con)
            con.execute("INSERT INTO schema_migrations VALUES (?, now())", [migration.name])
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
    """Everything inside commits together, or nothing does."""
    con.execute("BEGIN")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def build_table(con: duckdb.DuckDBPyConnection, name: str, variables: Mapping[str, object] = {}) -> int:
    """Materialize model `name` as a whole table (CREATE OR REPLACE), atomically."""
    set_variables(con, variables)
    with transaction(con):
        con.execute(f"CREATE OR REPLACE TABLE {name} AS {model_sql(name)}")
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
        "FROM information_schema.columns WHERE table_name = ?", [raw_table]
    ).fetchone()[0]
    fingerprint = hashlib.sha256(f"{sql}\n{raw_table}({columns})".encode("utf-8")).hexdigest()
    try:
        with transaction(con):
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
                con.execute("RESET VARIABLE after_file_seq")
                con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}")
                if on_change is not None:
                    on_change(con, name, None)
                mode, written = "full", None
            con.execute("DELETE FROM current_state_marks WHERE model = ?", [name])
            con.execute("INSERT INTO current_state_marks VALUES (?, ?, ?, ?)", [name, fingerprint, last_seq, raw_rows])
    finally:
        con.execute("RESET VARIABLE after_file_seq")
    rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
    return Refresh(mode, int(rows), int(rows if written is None else written))


def build_view(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Model `name` as a view: nothing stored, computed when read."""
    con.execute(f"CREATE OR REPLACE VIEW {name} AS {model_sql(name)}")


def table_type(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """`BASE TABLE`, `VIEW`, or None when the warehouse has no relation of that name."""
    row = con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()
    return row[0] if row else None


def replace_window(
    con: duckdb.DuckDBPyConnection,
    name: str,
    window_predicate: str,
    variables: Mapping[str, object] = {},
    parts: Sequence[Mapping[str, object]] = (),
) -> int:
    """Partitioned model: delete the window's rows, insert the model's rows for it, in one
    transaction. The model's SELECT filters itself to the window through its variables. With
    `parts` (variables that cut the window into pieces, e.g. one per store), the model's rows are
    inserted piece by piece, so that only one piece is in memory at a time."""
    set_variables(con, variables)
    sql = model_sql(name)
    with transaction(con):
        if table_type(con, name) is None:
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM ({sql}) WHERE false")
        con.execute(f"DELETE FROM {name} WHERE {window_predicate}")
        inserted = 0
        for part in parts or [variables]:
            set_variables(con, part)
            inserted += con.execute(f"INSERT INTO {name} BY NAME {sql}").fetchone()[0]
    return int(inserted)
