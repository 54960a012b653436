"""The warehouse's commands. `pagorecon sql [--format table|csv|json] "QUERY"`: one read-only query
against the warehouse, its result on stdout (README.md, Reading the warehouse). The warehouse is
opened read-only and only for the query, so a running job is never held up for longer than the
query itself. `pagorecon maintain` and `pagorecon migrate` (docs/operations.md, Maintenance and
Moving a home from warehouse.duckdb)."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import json
import sys
import uuid
from collections.abc import Sequence

import duckdb

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.warehouse.duckdb import connect
from pagorecon_dagster.warehouse.lake import ALIAS, Lake, extension_path

EXIT_OK, EXIT_QUERY_ERROR, EXIT_REFUSED = 0, 2, 2
FORMATS = ("table", "csv", "json")


def register(subparsers) -> None:
    sql = subparsers.add_parser("sql", help="run one read-only query against the warehouse, result on stdout")
    sql.add_argument("--format", choices=FORMATS, default="table", help="table (default), csv (header line, then rows) or json (one array of objects)")
    sql.add_argument("--attach", action="store_true",
                     help="print the statements that open the warehouse read-only in the DuckDB shell (same DuckDB version), and exit")
    sql.add_argument("query", nargs="?", help='the query, e.g. "SELECT status, count(*) FROM recon_items GROUP BY ALL"')
    sql.set_defaults(func=cmd_sql)

    upkeep = subparsers.add_parser("maintain", help="write out inlined rows, merge small files, expire snapshots older than "
                                   "warehouse.snapshot_retention_days, remove unreferenced files")
    upkeep.add_argument("--dry-run", action="store_true", help="list the snapshots that would expire and the files that would go; change nothing")
    upkeep.set_defaults(func=cmd_maintain)

    move = subparsers.add_parser("migrate", help="move this home's warehouse.duckdb (earlier versions) into the lake, once")
    move.add_argument("--force", action="store_true", help="replace the tables the lake already has data in with the file's")
    move.set_defaults(func=cmd_migrate)


def cmd_sql(args) -> int:
    settings = load_settings(args.home)
    if args.attach:
        print(shell_attach(settings.lake))
        return EXIT_OK
    if not args.query:
        print("pagorecon sql: give a query (or --attach)", file=sys.stderr)
        return EXIT_QUERY_ERROR
    with connect(settings.lake, read_only=True, private=True) as con:
        # Reading the warehouse only: no files read or written outside it (its data path and DuckDB's
        # spill folder excepted), and the query cannot undo that.
        con.execute("SET allowed_directories = ?", [[settings.lake.data_path, settings.lake.temp_directory]])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        try:
            cursor = con.execute(args.query)
            names = [d[0] for d in cursor.description] if cursor.description else []
            rows = cursor.fetchall() if names else []
        except duckdb.Error as exc:
            print(f"pagorecon sql: {exc}", file=sys.stderr)
            return EXIT_QUERY_ERROR
    {"table": write_table, "csv": write_csv, "json": write_json}[args.format](names, rows, sys.stdout)
    return EXIT_OK


def shell_attach(lake: Lake) -> str:
    """What a person pastes into the DuckDB shell (`duckdb`, version {duckdb.__version__}) to read the
    warehouse: the extensions from the installed wheels, then the read-only ATTACH. A reader never
    blocks a run and sees whole commits only."""
    lines = [f"-- DuckDB {duckdb.__version__}: the warehouse, read-only"]
    lines += [f"LOAD '{extension_path(name)}';" for name in lake.extensions()]
    lines += [lake.attach_sql(read_only=True) + ";", f"USE {ALIAS};", "SET TimeZone = 'America/Lima';"]
    return "\n".join(lines)


def cmd_maintain(args) -> int:
    from pagorecon_dagster.warehouse.maintain import maintain, report

    settings = load_settings(args.home)
    days = settings.warehouse.snapshot_retention_days
    # read-write even for a dry run: DuckLake's dry runs of the cleanups need a writable catalog
    with connect(settings.lake) as con:
        done = maintain(con, days, dry_run=args.dry_run)
    for line in report(done, days):
        print(line)
    return EXIT_OK


def cmd_migrate(args) -> int:
    from pagorecon_dagster.warehouse.migrate import MigrationRefused, migrate

    settings = load_settings(args.home)
    try:
        migrate(settings.lake, force=args.force, out=sys.stdout)
    except MigrationRefused as exc:
        print(f"pagorecon migrate: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


def text(value: object) -> str:
    """A value as csv and table cells show it: ISO dates, exact decimals, empty for NULL."""
    if value is None:
        return ""
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (list, dict, tuple)):
        return to_json(value)
    return str(value)


def to_json(value: object) -> str:
    """JSON text of one value; decimals and integers written exactly as the warehouse holds them."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f") if value.is_finite() else "null"
    if isinstance(value, float):
        return json.dumps(value) if value == value and abs(value) != float("inf") else "null"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    if isinstance(value, (dt.date, dt.time, uuid.UUID, dt.timedelta, bytes)):
        return json.dumps(text(value))
    return json.dumps(str(value), ensure_ascii=False)


def write_json(names: Sequence[str], rows: Sequence[tuple], out) -> None:
    out.write("[")
    for i, row in enumerate(rows):
        # keys in column order; built from the pairs so that two columns of one name both show
        fields = ",".join(f"{json.dumps(name, ensure_ascii=False)}:{to_json(v)}" for name, v in zip(names, row))
        out.write(("," if i else "") + "\n  {" + fields + "}")
    out.write("\n]\n" if rows else "]\n")


def write_csv(names: Sequence[str], rows: Sequence[tuple], out) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([text(v) for v in row])


def write_table(names: Sequence[str], rows: Sequence[tuple], out) -> None:
    cells = [list(names)] + [[text(v) for v in row] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(names))]
    for n, line in enumerate(cells):
        out.write("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")
    out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")
