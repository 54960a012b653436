"""`pagorecon diff --store S --date D [--format table|csv|json]`: what the last rerun of one store x
Lima day changed in its reconciled items (docs/reconciliation.md, What a rerun changed). Reads the
warehouse read-only; personal data in identifiers and evidence is masked."""

from __future__ import annotations

import sys
from zoneinfo import ZoneInfo

from pagorecon_dagster.cli import _date
from pagorecon_dagster.config import load_settings
from pagorecon_dagster.core.lima import LIMA_TZ
from pagorecon_dagster.core.money import format_cents
from pagorecon_dagster.reconciliation import diff
from pagorecon_dagster.reports.safety import FREE_TEXT, IDENTIFIER, shown
from pagorecon_dagster.warehouse.cli import FORMATS, write_csv, write_json
from pagorecon_dagster.warehouse.duckdb import connect

EXIT_OK, EXIT_USAGE = 0, 2
# How each shown column is masked for a person (reports/safety.py); the others are codes and amounts.
MASKED = {"reference": IDENTIFIER, "order_id": IDENTIFIER, "cip": IDENTIFIER, "evidence": FREE_TEXT}
# csv / json columns: the item, what changed, then every shown column before and after.
COLUMNS = ("store_id", "business_date", "change", "item", "reference", "order_id", "cip", "changed",
           *(f"{c}_{side}" for c in diff.SHOWN for side in ("before", "after")))


def register(subparsers) -> None:
    p = subparsers.add_parser("diff", help="what the last rerun of a store x Lima day changed in its reconciled items")
    p.add_argument("--store", required=True, help="store id")
    p.add_argument("--date", type=_date, required=True, help="Lima business date YYYY-MM-DD")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (default, for people), csv (header line, then one row per item) or json (one array of objects)")
    p.set_defaults(func=cmd_diff)


def _masked(name: str, value: object) -> object:
    return shown(MASKED[name], value) if name in MASKED and value is not None else value


def _lima(snapshot: diff.Snapshot) -> str:
    return f"{snapshot.at.astimezone(ZoneInfo(LIMA_TZ)):%Y-%m-%d %H:%M} Lima"


def _run(snapshot: diff.Snapshot) -> str:
    return f"snapshot {snapshot.id}, {_lima(snapshot)}" + (f", Dagster run {snapshot.run_id[:8]}" if snapshot.run_id else "")


def cmd_diff(args) -> int:
    settings = load_settings(args.home)
    if args.store not in settings.store_ids:
        print(f"pagorecon diff: unknown store {args.store}; pagorecon.yaml has {', '.join(settings.store_ids)}", file=sys.stderr)
        return EXIT_USAGE
    day, label = args.date, f"{args.store} {args.date.isoformat()}"
    with connect(settings.lake, read_only=True) as con:
        rerun = diff.reruns(con, [(args.store, day)])[(args.store, day)]
        after_items = diff.items_at(con, rerun.last.id, args.store, day) if rerun.last is not None else None
        first = rerun.key in diff.first_runs(con, [rerun])   # a first reconciliation is no rerun: nothing to list
        found = [] if first else diff.changes(con, [rerun])
    lines: list[str] = []
    if rerun.last is None:
        lines.append(f"{label}: no reconciliation of this day is recorded in the warehouse: it was never reconciled, "
                     f"or not since its snapshots older than warehouse.snapshot_retention_days "
                     f"({settings.warehouse.snapshot_retention_days}) were expired. Nothing to compare.")
    elif rerun.before is None:
        lines.append(f"{label}: last reconciled at {_run(rerun.last)}; the state before it is no longer kept (snapshots "
                     f"older than warehouse.snapshot_retention_days are expired by `pagorecon maintain`). Nothing to compare.")
    elif first:
        lines.append(f"{label}: reconciled once only ({_run(rerun.last)}), into {after_items} item(s); "
                     "no earlier run to compare with.")
    else:
        counts = {c: sum(1 for f in found if f.change == c) for c in (diff.ADDED, diff.REMOVED, diff.CHANGED)}
        unchanged = after_items - counts[diff.ADDED] - counts[diff.CHANGED]
        previous = f"the run before it: {_run(rerun.earlier)}" if rerun.earlier else f"against snapshot {rerun.before}"
        lines.append(f"{label}: last reconciled at {_run(rerun.last)}; {previous}.")
        lines.append(f"It added {counts[diff.ADDED]}, removed {counts[diff.REMOVED]} and changed {counts[diff.CHANGED]} "
                     f"item(s); {unchanged} of the day's {after_items} item(s) are as they were." if found else
                     f"It changed nothing: the day's {after_items} item(s) are as they were.")
    if args.format == "table":
        for line in lines:
            print(line)
        write_blocks(found, sys.stdout)
    else:
        for line in lines:
            print(f"pagorecon diff: {line}", file=sys.stderr)
        rows = [_row(change, listed=args.format == "json") for change in found]
        (write_csv if args.format == "csv" else write_json)(COLUMNS, rows, sys.stdout)
    return EXIT_OK


def _row(change: diff.Change, *, listed: bool) -> tuple:
    """One csv / json row; `changed` is a list in json, space-separated words in csv."""
    values = [change.store_id, change.business_date, change.change, change.kind,
              *(_masked(c, change.value(c)) for c in ("reference", "order_id", "cip")),
              list(change.fields) if listed else " ".join(change.fields)]
    for c in diff.SHOWN:
        for side in (change.before, change.after):
            values.append(_masked(c, side[c]) if side is not None else None)
    return tuple(values)


def _status(side: dict | None) -> str:
    return "-" if side is None else side["status"] + (f" ({side['reason']})" if side["reason"] else "")


def _money(side: dict | None, cents: str, currency: str) -> str:
    return "-" if side is None or side[cents] is None else format_cents(side[cents], side[currency])


# What the table shows for a change in each compared column: (label, how one side reads).
LINES = (
    ("status", ("status", "reason"), _status),
    ("reference", ("reference",), lambda s: "-" if s is None else _masked("reference", s["reference"]) or "-"),
    ("order", ("order_id",), lambda s: "-" if s is None else _masked("order_id", s["order_id"]) or "-"),
    ("CIP", ("cip",), lambda s: "-" if s is None else _masked("cip", s["cip"]) or "-"),
    ("order total", ("order_currency", "order_total_cents"), lambda s: _money(s, "order_total_cents", "order_currency")),
    ("paid", ("paid_currency", "paid_amount_cents"), lambda s: _money(s, "paid_amount_cents", "paid_currency")),
    # in the order's currency; a payment with no order: the whole amount, in its own
    ("difference", ("order_currency", "difference_cents"),
     lambda s: _money(s and {**s, "currency": s["order_currency"] or s["paid_currency"]}, "difference_cents", "currency")),
)


def write_blocks(found: list[diff.Change], out) -> None:
    """One block per item for a person: what it is, what changed (before -> after), its evidence."""
    for change in found:
        name = (f"order {_masked('order_id', change.value('order_id'))}" if change.kind == diff.ORDER_ITEM
                else f"CIP {_masked('cip', change.value('cip'))}")
        out.write(f"\n{change.change:<8} {name}\n")
        for label, columns, read in LINES:
            if change.change == diff.CHANGED and not set(columns) & set(change.fields):
                continue
            if change.change != diff.CHANGED and label in ("order", "CIP", "reference"):
                continue
            shown_before, shown_after = read(change.before), read(change.after)
            text = shown_after if change.change == diff.ADDED else shown_before if change.change == diff.REMOVED else f"{shown_before} -> {shown_after}"
            out.write(f"  {label:<16} {text}\n")
        for side_name, side in (("evidence before", change.before), ("evidence after", change.after)):
            if side is not None:
                out.write(f"  {side_name:<16} {_masked('evidence', side['evidence']) or '-'}\n")
