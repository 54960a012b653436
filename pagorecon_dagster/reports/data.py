"""What the reports read from the warehouse: reconciled items (with the commission and IGV of
their payment), refunds, reversed CIPs and how far each store's statements reach. Reads only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from pagorecon_dagster.reconciliation import diff
from pagorecon_dagster.warehouse.duckdb import table_type

ITEMS_SQL = """
SELECT r.store_id, r.business_date, r.reference, r.order_id, r.cip, r.status, r.reason,
       r.order_currency, r.order_total_cents, r.paid_currency, r.paid_amount_cents, r.difference_cents,
       coalesce(k.refund_candidate, FALSE) AS refund_candidate, coalesce(r.refunded_cents, 0) AS refunded_cents, r.evidence,
       -- fees belong to the payment that decided the item; an unpaid item has none
       CASE WHEN r.paid_amount_cents IS NOT NULL THEN p.commission_cents END AS commission_cents,
       CASE WHEN r.paid_amount_cents IS NOT NULL THEN p.igv_cents END AS igv_cents,
       r.evidence_code, r.evidence_args, coalesce(r.provisional, FALSE) AS provisional
FROM recon_items AS r
LEFT JOIN payments AS p ON p.store_id = r.store_id AND p.cip = r.cip
-- which items are refund candidates is the catalog's word (reconciliation/catalog.py)
LEFT JOIN status_catalog AS k ON k.status = r.status AND k.reason IS NOT DISTINCT FROM r.reason
WHERE list_contains(?, r.store_id) AND r.business_date BETWEEN ? AND ?
ORDER BY r.store_id, r.business_date, r.reference, r.order_id NULLS LAST, r.status = 'DUPLICATE_PAYMENT', r.cip
"""

REFUNDS_SQL = """
SELECT * FROM (
    SELECT refund_id, store_id, order_id, cip, amount_cents, currency, reason, status, requested_by,
           beneficiary_document, beneficiary_account,
           timezone('America/Lima', requested_at) AS requested_lima,
           timezone('America/Lima', completed_at) AS completed_lima
    FROM refunds
    WHERE list_contains(?, store_id)
)
WHERE CAST(requested_lima AS DATE) BETWEEN ? AND ? OR CAST(completed_lima AS DATE) BETWEEN ? AND ?
ORDER BY store_id, requested_lima, refund_id
"""

# A reversed CIP belongs to the date of the order it paid (as its order's items do: the date of
# the order's own row); with no order, to its own payment (or creation) date.
REVERSALS_SQL = """
WITH order_dates AS (
    SELECT store_id, reference, min(business_date) AS business_date
    FROM recon_items
    WHERE status IN (SELECT status FROM status_catalog WHERE primary_item) AND list_contains(?, store_id)
    GROUP BY store_id, reference
)
SELECT * FROM (
    SELECT p.store_id, p.cip, p.currency, p.amount_cents,
           coalesce(d.business_date, p.payment_date, p.creation_date) AS business_date
    FROM payments AS p
    LEFT JOIN order_dates AS d ON d.store_id = p.store_id AND d.reference = p.reference
    WHERE p.status = 'reversed' AND list_contains(?, p.store_id)
)
WHERE business_date BETWEEN ? AND ?
ORDER BY store_id, business_date, cip
"""


@dataclass(frozen=True)
class Item:
    """One `recon_items` row, plus its payment's commission and IGV (None = not in the statement)."""

    store_id: str
    business_date: dt.date
    reference: str | None  # None: a CIP that carried no reference
    order_id: str | None
    cip: str | None
    status: str
    reason: str | None
    order_currency: str | None
    order_total_cents: int | None
    paid_currency: str | None
    paid_amount_cents: int | None
    difference_cents: int | None
    refund_candidate: bool
    refunded_cents: int
    evidence: str | None
    commission_cents: int | None
    igv_cents: int | None
    evidence_code: str | None  # the message of evidence_catalog; None: `evidence` written as text by an earlier version
    evidence_args: str | None  # its values, JSON
    provisional: bool = False  # the day's statements are not final yet: the item may still change

    @property
    def currency(self) -> str:
        """The currency the item counts under (the order's; the payment's without an order), as `recon_daily_summary`."""
        return self.order_currency or self.paid_currency or ""

    @property
    def is_paid(self) -> bool:
        return self.paid_amount_cents is not None


@dataclass(frozen=True)
class Refund:
    refund_id: str
    store_id: str
    order_id: str | None
    cip: str
    amount_cents: int
    currency: str
    reason: str
    status: str
    requested_by: str
    beneficiary_document: str | None
    beneficiary_account: str | None
    requested_lima: dt.datetime | None
    completed_lima: dt.datetime | None


@dataclass(frozen=True)
class Reversal:
    store_id: str
    cip: str
    currency: str
    amount_cents: int
    business_date: dt.date


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return table_type(con, name) is not None


def _require(con: duckdb.DuckDBPyConnection, *tables: str) -> None:
    missing = [t for t in tables if not _table_exists(con, t)]
    if missing:
        raise RuntimeError(
            f"warehouse has no table {', '.join(missing)}: reports read the reconciliation; "
            "materialize the `reconcile` job (or `pagorecon run`) for these dates first"
        )


def load_items(con: duckdb.DuckDBPyConnection, stores: Sequence[str], start: dt.date, end: dt.date) -> list[Item]:
    _require(con, "recon_items", "payments")
    return [Item(*row) for row in con.execute(ITEMS_SQL, [list(stores), start, end]).fetchall()]


def load_refunds(con: duckdb.DuckDBPyConnection, stores: Sequence[str], start: dt.date, end: dt.date) -> list[Refund]:
    rows = con.execute(REFUNDS_SQL, [list(stores), start, end, start, end]).fetchall()
    return [Refund(*row) for row in rows]


def load_reversals(con: duckdb.DuckDBPyConnection, stores: Sequence[str], start: dt.date, end: dt.date) -> list[Reversal]:
    _require(con, "recon_items", "payments")
    rows = con.execute(REVERSALS_SQL, [list(stores), list(stores), start, end]).fetchall()
    return [Reversal(*row) for row in rows]


def load_coverage(con: duckdb.DuckDBPyConnection) -> dict[str, dt.date]:
    """Each store's statement coverage (Lima date): the data's own "as of", never the wall clock."""
    if not _table_exists(con, "statement_coverage"):
        return {}
    return {store: day for store, day in con.execute("SELECT store_id, coverage_date FROM statement_coverage").fetchall() if day}


def load_changes(con: duckdb.DuckDBPyConnection, keys: Sequence[tuple[str, dt.date]]) -> dict[tuple[str, dt.date], diff.Counts]:
    """What the last rerun of each store x day changed (reconciliation/diff.py); a day reconciled once only has no entry."""
    return diff.counts(con, diff.reruns(con, keys).values())
