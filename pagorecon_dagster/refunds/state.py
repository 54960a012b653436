"""The refund state machine. This module is the only code that writes a `refunds` row, and every
write it makes is recorded in `audit_log` in the same transaction.

    requested -> rejected | awaiting_approval | approved -> submitted -> paid | failed
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import duckdb

from pagorecon_dagster.config import audit_key
from pagorecon_dagster.core.masking import mask_digits
from pagorecon_dagster.refunds import audit
from pagorecon_dagster.warehouse.duckdb import Lake, connect
from pagorecon_dagster.warehouse.duckdb import atomically as sql_atomically
from pagorecon_dagster.warehouse.duckdb import transaction as sql_transaction

T = TypeVar("T")

REQUESTED, REJECTED, AWAITING_APPROVAL, APPROVED = "requested", "rejected", "awaiting_approval", "approved"
SUBMITTED, PAID, FAILED = "submitted", "paid", "failed"
STATUSES = (REQUESTED, REJECTED, AWAITING_APPROVAL, APPROVED, SUBMITTED, PAID, FAILED)
# Refunds closed without paying: they no longer count against what is refundable on the CIP.
NOT_COMMITTING = (REJECTED, FAILED)
# Refunds still moving: a second one for the same CIP and reason is a duplicate.
OPEN = (AWAITING_APPROVAL, APPROVED, SUBMITTED)

# An approved refund is paid only while its CIP is still paid: a reversal (extorno) after
# approval holds it for a person to reject.
PAYABLE_SQL = (
    "status = 'approved' AND EXISTS (SELECT 1 FROM payments AS p "
    "WHERE p.store_id = refunds.store_id AND p.cip = refunds.cip AND p.status = 'paid')"
)

PERSONAL_COLUMNS = ("beneficiary_document", "beneficiary_account")
# Notes about a payout, not decisions: written without an audit entry (`note_problem`, batch status).
UNAUDITED_COLUMNS = ("last_error", "provider_status")

# One refund writer at a time inside this process: its threads share one DuckDB, where a second
# open transaction on a SQLite catalog makes the first one's commit fail on the catalog's lock.
# Across processes and hosts nothing is locked: every decision takes the audit chain's turn
# (audit.append), so two transactions that decide anything commit one after the other, and the
# one whose commit conflicts is rolled back and runs again (`atomically`), reading what the other
# committed: a claim that lost the race finds the refund already claimed. Reentrant: a transaction
# on a connection opened under it takes it again.
_WRITER = threading.RLock()


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# Audit heads appended by the open transaction of this thread, anchored once it commits.
_OPEN = threading.local()


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """A refund decision and its audit entries commit together, or not at all; once committed,
    their heads are anchored outside the warehouse (still under the writer lock, so in order).
    A commit that conflicts raises and anchors nothing; `atomically` runs the work again."""
    with _WRITER:
        outermost = getattr(_OPEN, "heads", None) is None
        if outermost:
            _OPEN.heads = []
        try:
            with sql_transaction(con):
                yield con
            if outermost:
                _anchor(con, _OPEN.heads)
        finally:
            if outermost:
                _OPEN.heads = None


def _audited(con: duckdb.DuckDBPyConnection, entry: dict[str, Any]) -> None:
    heads = getattr(_OPEN, "heads", None)
    if heads is None:  # autocommitted: anchor it now
        _anchor(con, [(entry["seq"], entry["hash"])])
    else:
        heads.append((entry["seq"], entry["hash"]))


def _anchor(con: duckdb.DuckDBPyConnection, heads: list[tuple[int, str]]) -> None:
    anchor = audit.Anchor.of_connection(con) if heads else None
    if anchor is None:
        return
    try:
        anchor.record(heads)
    except OSError as exc:
        raise RuntimeError(
            f"{anchor.path}: audit entries {heads[0][0]}..{heads[-1][0]} are saved but could not be anchored ({exc.strerror}); "
            "make the file writable by every account that runs pagorecon, then run `pagorecon refunds verify-audit`"
        ) from exc


def atomically(where: Lake | duckdb.DuckDBPyConnection, body: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """`body(con)` as one `transaction`, run again from the start when its commit conflicts with
    another writer's (warehouse.duckdb.atomically: bounded, with backoff); only the attempt that
    committed has its audit heads anchored. `where` is a connection, or the lake to open one on
    for this transaction only (payout steps hold no connection while they talk to a provider).
    The body may run more than once: it does warehouse work only, and decides from what it reads."""
    if isinstance(where, Lake):
        with connect(where) as con:
            return atomically(con, body)
    return sql_atomically(where, body, within=transaction)


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def load(con: duckdb.DuckDBPyConnection, refund_id: str) -> dict[str, Any] | None:
    found = rows(con, "SELECT * FROM refunds WHERE refund_id = ?", [refund_id])
    return found[0] if found else None


def snapshot(refund: dict[str, Any] | None) -> dict[str, Any] | None:
    """The refund as the audit log keeps it: every column, personal data masked."""
    if refund is None:
        return None
    kept = {k: (mask_digits(v) if k in PERSONAL_COLUMNS and v else v) for k, v in refund.items()}
    key = audit_key()
    # Digests let `verify` see a personal value replaced by one with the same visible digits.
    return kept | {f"{k}_digest": audit.personal_digest(refund["refund_id"], refund[k], key) for k in PERSONAL_COLUMNS}


def create(con: duckdb.DuckDBPyConnection, refund: dict[str, Any], *, actor: str, why: str, now: dt.datetime) -> dict[str, Any]:
    """Insert a new refund in `requested`. Call inside `transaction`."""
    values = {**refund, "status": REQUESTED, "attempts": 0}
    con.execute(
        f"INSERT INTO refunds ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})", list(values.values())
    )
    created = load(con, refund["refund_id"])
    _audited(con, audit.append(con, actor=actor, action="create", entity="refund", entity_id=refund["refund_id"],
                               before=None, after=snapshot(created), why=why, now=now))
    return created


def transition(
    con: duckdb.DuckDBPyConnection,
    refund_id: str,
    *,
    expect: Iterable[str],
    to: str,
    actor: str,
    action: str,
    why: str,
    now: dt.datetime,
    changes: dict[str, Any] | None = None,
    count_attempt: bool = False,
    expect_attempts: int | None = None,
) -> dict[str, Any] | None:
    """Move a refund from one of `expect` to `to` (which may be the same status, to record a fact
    such as a provider reference), and audit it. The UPDATE is conditional on the status (and on
    the attempt count when given), so a refund another worker already moved is left alone and
    None is returned. Call inside `transaction`."""
    expected = tuple(expect)
    before = load(con, refund_id)
    if before is None or before["status"] not in expected:
        return None
    if expect_attempts is not None and before["attempts"] != expect_attempts:
        return None
    assignments = {"status": to, **(changes or {})}
    set_sql = ", ".join(f"{column} = ?" for column in assignments)
    if count_attempt:
        set_sql += ", attempts = attempts + 1"
    where = f"refund_id = ? AND status IN ({', '.join('?' for _ in expected)})"
    params = [*assignments.values(), refund_id, *expected]
    if expect_attempts is not None:
        where += " AND attempts = ?"
        params.append(expect_attempts)
    # DuckLake's UPDATE returns no rows: the count says whether it moved, the row is read back.
    # Another process moving the same refund meanwhile makes the two commits conflict.
    moved = con.execute(f"UPDATE refunds SET {set_sql} WHERE {where}", params).fetchone()[0]
    if not moved:
        return None
    after = load(con, refund_id)
    _audited(con, audit.append(con, actor=actor, action=action, entity="refund", entity_id=refund_id,
                               before=snapshot(before), after=snapshot(after), why=why, now=now))
    return after


def note_problem(con: duckdb.DuckDBPyConnection, refund_id: str, problem: str | None) -> None:
    """Remember the last payout problem on the refund (not a decision: no audit entry)."""
    con.execute("UPDATE refunds SET last_error = ? WHERE refund_id = ?", [problem, refund_id])
