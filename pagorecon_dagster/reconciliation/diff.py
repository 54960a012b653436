"""What the last rerun of a store x Lima day changed in its reconciled items (docs/reconciliation.md,
What a rerun changed): `pagorecon diff` and the daily report's "changed since the previous run".

Every commit to the warehouse is a DuckLake snapshot. A reconciliation rewrites its window of
`recon_item_rows` in one transaction and labels that snapshot (`RECONCILED`, with the window in
its extra info), so the reconciliations of a day are the labelled snapshots whose window covers it,
also one that left the day with no items. What the last of them changed is the day's items as that
snapshot left them against the same rows in the snapshot just before it, the state it replaced.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import duckdb

from pagorecon_dagster.reconciliation import catalog
from pagorecon_dagster.warehouse.duckdb import model_sql

# The commit message of a reconciliation's snapshot; its extra info is `commit_note`'s JSON.
RECONCILED = "reconcile recon_item_rows"

# What an item is, across two runs (docs/reconciliation.md, The items): an order's own row is that
# order's, whatever its status, CIP and amounts become; a paid CIP's extra row (a duplicate, an
# orphan) is that CIP's. So a late payment changes its order's row rather than removing one and
# adding another.
ORDER_ITEM, CIP_ITEM = "order", "CIP"
# The columns compared: a change in any of them is a changed item. The evidence is shown, not
# compared: its sentence names the statements' reach, which moves with every new statement.
COMPARED = ("status", "reason", "reference", "order_id", "cip", "order_currency", "order_total_cents",
            "paid_currency", "paid_amount_cents", "difference_cents")
SHOWN = (*COMPARED, "evidence")
ADDED, REMOVED, CHANGED = "added", "removed", "changed"


def commit_note(stores: Sequence[str], start: dt.date, end: dt.date, run_id: str | None) -> tuple[str, dict[str, object]]:
    """The label of a reconciliation's snapshot (warehouse/duckdb.py `note_commit`)."""
    return RECONCILED, {"stores": sorted(stores), "start_date": start.isoformat(), "end_date": end.isoformat(), "run_id": run_id}


@dataclass(frozen=True)
class Snapshot:
    id: int
    at: dt.datetime            # when it was committed
    run_id: str | None = None  # the Dagster run that committed it, for a reconciliation


@dataclass(frozen=True)
class Rerun:
    """The last reconciliation of one store x day, the one before it, and the state it replaced."""

    store_id: str
    business_date: dt.date
    last: Snapshot | None      # None: no reconciliation of the day is recorded in the snapshots kept
    earlier: Snapshot | None   # the reconciliation before `last`; None: `last` is the first recorded
    before: int | None         # the snapshot just before `last` (None: expired, see `pagorecon maintain`)

    @property
    def key(self) -> tuple[str, dt.date]:
        return self.store_id, self.business_date


@dataclass(frozen=True)
class Change:
    """One item the last rerun added, removed or changed; `before` and `after` hold SHOWN."""

    store_id: str
    business_date: dt.date
    change: str                   # added | removed | changed
    fields: tuple[str, ...]       # the COMPARED columns that differ (a changed item's; none for added / removed)
    before: dict[str, object] | None
    after: dict[str, object] | None

    @property
    def kind(self) -> str:
        return CIP_ITEM if (self.after or self.before)["status"] in catalog.secondary_codes() else ORDER_ITEM

    def value(self, name: str) -> object:
        """The item's `name` now, or as it was when it was removed."""
        return (self.after or self.before)[name]


@dataclass(frozen=True)
class Counts:
    added: int = 0
    removed: int = 0
    changed: int = 0

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def reruns(con: duckdb.DuckDBPyConnection, keys: Iterable[tuple[str, dt.date]]) -> dict[tuple[str, dt.date], Rerun]:
    """The last reconciliation of each store x day of `keys`, read from the snapshots' labels."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    stores = sorted({s for s, _ in keys})
    start, end = min(d for _, d in keys), max(d for _, d in keys)
    rows = con.execute(
        """SELECT snapshot_id, snapshot_time, before_id, commit_extra_info ->> 'run_id',
                  CAST(commit_extra_info -> 'stores' AS VARCHAR[]),
                  CAST(commit_extra_info ->> 'start_date' AS DATE), CAST(commit_extra_info ->> 'end_date' AS DATE)
           FROM (SELECT *, lag(snapshot_id) OVER (ORDER BY snapshot_id) AS before_id
                 FROM ducklake_snapshots(current_database()))
           WHERE commit_message = ?
             AND list_has_any(CAST(commit_extra_info -> 'stores' AS VARCHAR[]), ?)
             AND CAST(commit_extra_info ->> 'start_date' AS DATE) <= ?
             AND CAST(commit_extra_info ->> 'end_date' AS DATE) >= ?
           ORDER BY snapshot_id DESC""",
        [RECONCILED, stores, end, start],
    ).fetchall()
    found = {}
    for store, day in keys:
        covering = [r for r in rows if store in r[4] and r[5] <= day <= r[6]][:2]
        last = Snapshot(covering[0][0], covering[0][1], covering[0][3]) if covering else None
        earlier = Snapshot(covering[1][0], covering[1][1], covering[1][3]) if len(covering) > 1 else None
        # Snapshot ids count up by one; when the one just before was expired, the state replaced is gone.
        before = covering[0][0] - 1 if covering and covering[0][2] == covering[0][0] - 1 else None
        found[(store, day)] = Rerun(store, day, last, earlier, before)
    return found


def _items_at(snapshot: int) -> str:
    """`recon_items` (dbt_like_sql/recon_items.sql, the view finance reads) as of `snapshot`."""
    source = "FROM recon_item_rows"
    sql = model_sql("recon_items")
    if sql.count(source) != 1:
        raise RuntimeError(f"dbt_like_sql/recon_items.sql should read `{source}` once to be read as of a snapshot")
    return sql.replace(source, f"FROM recon_item_rows AT (VERSION => {int(snapshot)})")


def _rows_at(snapshot: int, *, evidence: bool) -> str:
    """The items as of `snapshot`: with their evidence, the view finance reads; without, only the
    stored columns compared (much cheaper to read)."""
    if evidence:
        return _items_at(snapshot)
    return f"SELECT store_id, business_date, {', '.join(COMPARED)} FROM recon_item_rows AT (VERSION => {int(snapshot)})"


def _changes_sql(last: int, before: int, *, evidence: bool) -> str:
    """The items of some store x days that differ between the two snapshots. Each side binds the
    paid CIPs' extra statuses, the stores, the first and last day, and the days as 'store day' keys."""
    def side(snapshot: int) -> str:
        return f"""SELECT *, CASE WHEN list_contains(?, status) THEN '{CIP_ITEM} ' || coalesce(cip, '')
                                  ELSE '{ORDER_ITEM} ' || coalesce(order_id, '') END AS item_key
                   FROM ({_rows_at(snapshot, evidence=evidence)})
                   WHERE list_contains(?, store_id) AND business_date BETWEEN ? AND ?
                     AND list_contains(?, store_id || ' ' || business_date)"""
    differs = ", ".join(f"CASE WHEN a.{c} IS DISTINCT FROM b.{c} THEN '{c}' END" for c in COMPARED)
    columns = ", ".join(f"b.{c} AS {c}_before, a.{c} AS {c}_after" for c in (SHOWN if evidence else COMPARED))
    return f"""
        SELECT * FROM (
            SELECT coalesce(a.store_id, b.store_id) AS store_id, coalesce(a.business_date, b.business_date) AS business_date,
                   CASE WHEN b.item_key IS NULL THEN '{ADDED}' WHEN a.item_key IS NULL THEN '{REMOVED}' ELSE '{CHANGED}' END AS change,
                   list_filter([{differs}], f -> f IS NOT NULL) AS fields, a.item_key IS NOT NULL AS present_after,
                   b.item_key IS NOT NULL AS present_before, {columns}
            FROM ({side(last)}) AS a
            FULL JOIN ({side(before)}) AS b
              ON a.store_id = b.store_id AND a.business_date = b.business_date AND a.item_key = b.item_key
        )
        WHERE change <> '{CHANGED}' OR len(fields) > 0"""


def _by_snapshots(found: Iterable[Rerun]) -> dict[tuple[int, int], list[Rerun]]:
    """The reruns to compare, grouped by the pair of snapshots they compare (mostly one pair)."""
    groups: dict[tuple[int, int], list[Rerun]] = defaultdict(list)
    for rerun in found:
        if rerun.last is not None and rerun.before is not None:
            groups[(rerun.last.id, rerun.before)].append(rerun)
    return groups


def _bind(group: list[Rerun]) -> list[object]:
    stores = sorted({r.store_id for r in group})
    first, last = min(r.business_date for r in group), max(r.business_date for r in group)
    keys = [f"{r.store_id} {r.business_date.isoformat()}" for r in group]
    return [list(catalog.secondary_codes()), stores, first, last, keys] * 2


def _days_with_items(con: duckdb.DuckDBPyConnection, snapshot: int, group: list[Rerun]) -> set[tuple[str, dt.date]]:
    """The store x days of `group` that had items as of `snapshot`."""
    stores = sorted({r.store_id for r in group})
    first, last = min(r.business_date for r in group), max(r.business_date for r in group)
    return set(con.execute(
        f"""SELECT DISTINCT store_id, business_date FROM recon_item_rows AT (VERSION => {int(snapshot)})
            WHERE list_contains(?, store_id) AND business_date BETWEEN ? AND ?""", [stores, first, last]
    ).fetchall())


def first_runs(con: duckdb.DuckDBPyConnection, found: Iterable[Rerun]) -> set[tuple[str, dt.date]]:
    """The days whose last run is their first: no reconciliation before it is recorded and the day
    had no items before it. A first run is no rerun: it changed nothing that was there."""
    firsts: set[tuple[str, dt.date]] = set()
    for (_, before), group in _by_snapshots(r for r in found if r.earlier is None).items():
        had = _days_with_items(con, before, group)
        firsts |= {r.key for r in group if r.key not in had}
    return firsts


def changes(con: duckdb.DuckDBPyConnection, found: Iterable[Rerun]) -> list[Change]:
    """Every item the last rerun of each day added, removed or changed, with its evidence before and after."""
    out = []
    for (last, before), group in _by_snapshots(found).items():
        cursor = con.execute(f"SELECT * FROM ({_changes_sql(last, before, evidence=True)}) ORDER BY ALL", _bind(group))
        names = [d[0] for d in cursor.description]
        for values in cursor.fetchall():
            row = dict(zip(names, values))
            before_row = {c: row[f"{c}_before"] for c in SHOWN} if row["present_before"] else None
            after_row = {c: row[f"{c}_after"] for c in SHOWN} if row["present_after"] else None
            fields = tuple(row["fields"]) if row["change"] == CHANGED else ()
            out.append(Change(row["store_id"], row["business_date"], row["change"], fields, before_row, after_row))
    return sorted(out, key=lambda c: (c.store_id, c.business_date, c.value("reference") or "", c.kind, c.value("order_id") or "",
                                      c.value("cip") or "", c.change))


def counts(con: duckdb.DuckDBPyConnection, found: Iterable[Rerun]) -> dict[tuple[str, dt.date], Counts]:
    """Per store x day, how many items its last rerun added, removed and changed; a day whose last
    run was its first (`first_runs`) has no entry."""
    found = list(found)
    firsts = first_runs(con, found)
    out: dict[tuple[str, dt.date], Counts] = {}
    for (last, before), group in _by_snapshots(r for r in found if r.key not in firsts).items():
        rows = con.execute(
            f"""SELECT store_id, business_date, count(*) FILTER (WHERE change = '{ADDED}'),
                       count(*) FILTER (WHERE change = '{REMOVED}'), count(*) FILTER (WHERE change = '{CHANGED}')
                FROM ({_changes_sql(last, before, evidence=False)}) GROUP BY ALL""", _bind(group)
        ).fetchall()
        out.update({(store, day): Counts(added, removed, changed) for store, day, added, removed, changed in rows})
    return out


def items_at(con: duckdb.DuckDBPyConnection, snapshot: int, store: str, day: dt.date) -> int:
    """How many items the store x day had as of `snapshot`."""
    return con.execute(f"SELECT count(*) FROM ({_rows_at(snapshot, evidence=False)}) WHERE store_id = ? AND business_date = ?",
                       [store, day]).fetchone()[0]
