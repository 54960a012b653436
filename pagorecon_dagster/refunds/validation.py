"""Is a refund allowed? Each failed rule is a reason code stored on the refund (docs/refunds.md).

Refund by the original route: the order, the CIP and the amount agree with the warehouse, the CIP
is paid and not reversed, the money goes back in the payment's currency to the person who paid,
never more than what is still refundable, and never twice for the same reason."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from pagorecon_dagster.core.masking import mask_digits
from pagorecon_dagster.core.money import format_cents
from pagorecon_dagster.ingestion.sources import normalize_reference
from pagorecon_dagster.refunds.state import NOT_COMMITTING, OPEN

ORDER_UNKNOWN = "ORDER_UNKNOWN"
CIP_UNKNOWN = "CIP_UNKNOWN"
CIP_NOT_FOR_ORDER = "CIP_NOT_FOR_ORDER"
AMOUNT_ABOVE_PAID = "AMOUNT_ABOVE_PAID"
CIP_NOT_PAID = "CIP_NOT_PAID"
CIP_REVERSED = "CIP_REVERSED"
CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
AMOUNT_NOT_POSITIVE = "AMOUNT_NOT_POSITIVE"
AMOUNT_ABOVE_REFUNDABLE = "AMOUNT_ABOVE_REFUNDABLE"
PAYER_UNKNOWN = "PAYER_UNKNOWN"
BENEFICIARY_NOT_PAYER = "BENEFICIARY_NOT_PAYER"
DUPLICATE_OPEN_REFUND = "DUPLICATE_OPEN_REFUND"


@dataclass(frozen=True)
class Failure:
    code: str
    detail: str  # for a person; personal data masked


def reference_of(order_id: str | None) -> str:
    """The order reference as reconciliation compares it (docs/landing-formats.md, Orders)."""
    return normalize_reference(pd.Series([order_id or ""], dtype="string")).iloc[0]


def same_document(a: str | None, b: str | None) -> bool:
    """Document numbers compared without spaces, dots or dashes, case-insensitively."""
    def clean(value: str | None) -> str:
        return re.sub(r"[\s.\-]", "", value or "").upper()
    return clean(a) != "" and clean(a) == clean(b)


def normalized_reason(reason: str) -> str:
    return reason.strip().upper()


def validate(con: duckdb.DuckDBPyConnection, refund: dict[str, Any]) -> list[Failure]:
    """Every rule the refund breaks, checked against the warehouse and the other refunds."""
    store, cip, amount, currency = refund["store_id"], refund["cip"], refund["amount_cents"], refund["currency"]
    failures: list[Failure] = []
    order = con.execute(
        "SELECT order_id FROM orders WHERE store_id = ? AND reference = ? ORDER BY order_id LIMIT 1",
        [store, reference_of(refund["order_id"])],
    ).fetchone()
    if order is None:
        failures.append(Failure(ORDER_UNKNOWN, f"store {store} has no order {refund['order_id']!r}"))
    payment = con.execute(
        "SELECT status, currency, amount_cents, reference, user_document_number FROM payments WHERE store_id = ? AND cip = ?",
        [store, cip],
    ).fetchone()
    if payment is None:
        failures.append(Failure(CIP_UNKNOWN, f"store {store}'s statements have no CIP {cip}"))
        return failures
    status, paid_currency, paid_cents, reference, payer_document = payment
    if order is not None and reference != reference_of(refund["order_id"]):
        failures.append(Failure(CIP_NOT_FOR_ORDER, f"CIP {cip} was issued for reference {reference}, not for order {refund['order_id']}"))
    if status == "reversed":
        failures.append(Failure(CIP_REVERSED, f"CIP {cip} was paid and then reversed (extorno): nothing to refund"))
    elif status != "paid":
        failures.append(Failure(CIP_NOT_PAID, f"CIP {cip} is {status}, not paid"))
    if currency != paid_currency:
        failures.append(Failure(CURRENCY_MISMATCH, f"refund in {currency}, but CIP {cip} was paid in {paid_currency}"))
    if amount <= 0:
        failures.append(Failure(AMOUNT_NOT_POSITIVE, f"amount {format_cents(amount, currency)} is not above zero"))
    elif status == "paid" and currency == paid_currency:
        failures += _amount_failures(con, refund, paid_cents)
    if not (payer_document or "").strip():
        failures.append(Failure(PAYER_UNKNOWN, f"the statements do not record who paid CIP {cip}: the original route is unknown"))
    elif not same_document(refund["beneficiary_document"], payer_document):
        failures.append(Failure(
            BENEFICIARY_NOT_PAYER,
            f"beneficiary document {mask_digits(refund['beneficiary_document']) or '(none)'} is not the payer's {mask_digits(payer_document)}",
        ))
    duplicate = con.execute(
        f"""SELECT refund_id FROM refunds WHERE store_id = ? AND cip = ? AND upper(trim(reason)) = ?
              AND status IN ({', '.join('?' for _ in OPEN)}) AND refund_id <> ? ORDER BY refund_id LIMIT 1""",
        [store, cip, normalized_reason(refund["reason"]), *OPEN, refund["refund_id"]],
    ).fetchone()
    if duplicate:
        failures.append(Failure(DUPLICATE_OPEN_REFUND, f"refund {duplicate[0]} for CIP {cip} and reason {refund['reason']} is still open"))
    return failures


def _amount_failures(con: duckdb.DuckDBPyConnection, refund: dict[str, Any], paid_cents: int) -> list[Failure]:
    amount, currency, cip = refund["amount_cents"], refund["currency"], refund["cip"]
    if amount > paid_cents:
        return [Failure(AMOUNT_ABOVE_PAID, f"{format_cents(amount, currency)} is more than CIP {cip} paid ({format_cents(paid_cents, currency)})")]
    committed = con.execute(
        f"""SELECT coalesce(sum(amount_cents), 0) FROM refunds WHERE store_id = ? AND cip = ?
              AND status NOT IN ({', '.join('?' for _ in NOT_COMMITTING)}) AND refund_id <> ?""",
        [refund["store_id"], cip, *NOT_COMMITTING, refund["refund_id"]],
    ).fetchone()[0]
    refundable = paid_cents - int(committed)
    if amount > refundable:
        return [Failure(
            AMOUNT_ABOVE_REFUNDABLE,
            f"{format_cents(amount, currency)} is more than is still refundable on CIP {cip}: paid {format_cents(paid_cents, currency)}"
            f" minus {format_cents(int(committed), currency)} already refunded or in progress = {format_cents(refundable, currency)}",
        )]
    return []
