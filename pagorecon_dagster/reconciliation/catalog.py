"""The statuses and reasons a reconciled item can carry (docs/reconciliation.md, Statuses and
reasons), defined once: each status's group, which (status, reason) pairs are refund candidates,
the reason a proposed refund of one carries, and their names in every report language.

Every open of the warehouse for writing seeds this table into `status_catalog` (one row per
status and reason) whenever it changed; the SQL models join that table instead of listing
statuses, and the reports read this module. Change a status here, and nowhere else."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb

# What a status asks of a person: nothing (matched), something (needs action), patience for the
# buyer (waiting), or nothing any more (closed).
MATCHED, NEEDS_ACTION, WAITING, CLOSED = "matched", "needs_action", "waiting", "closed"
GROUPS = (MATCHED, NEEDS_ACTION, WAITING, CLOSED)
LANGUAGES = ("en", "es")


@dataclass(frozen=True)
class Reason:
    code: str | None  # None: the status without a reason
    refund_candidate: bool = False
    refund_reason: str | None = None  # the reason (and refund id suffix) of a proposed refund; default: the reason, else the status


@dataclass(frozen=True)
class Status:
    code: str
    group: str
    label: Mapping[str, str]    # language -> short name
    meaning: Mapping[str, str]  # language -> one sentence
    reasons: tuple[Reason, ...]
    primary: bool = True  # an order's own row (one per PagoEfectivo order); False: a paid CIP's extra row


STATUSES: tuple[Status, ...] = (
    Status(
        "MATCHED", MATCHED,
        {"en": "Matched", "es": "Conciliado"},
        {"en": "The payment equals the order to the céntimo (or, converted at the SBS rate, is within the tolerance).",
         "es": "El pago es igual al pedido al céntimo (o, convertido al tipo de cambio SBS, está dentro de la tolerancia)."},
        (Reason(None), Reason("FX_CONVERTED")),
    ),
    Status(
        "AMOUNT_MISMATCH", NEEDS_ACTION,
        {"en": "Amount differs", "es": "Monto distinto"},
        {"en": "Paid in the order's currency, but a different amount than the order total.",
         "es": "Pagado en la moneda del pedido, pero por un monto distinto al total del pedido."},
        (Reason("UNDERPAID"), Reason("OVERPAID", refund_candidate=True)),
    ),
    Status(
        "CURRENCY_MISMATCH", NEEDS_ACTION,
        {"en": "Currency differs", "es": "Moneda distinta"},
        {"en": "Paid in another currency and no SBS exchange rate explains the amount.",
         "es": "Pagado en otra moneda y ningún tipo de cambio SBS explica el monto."},
        (Reason("NO_FX_RATE"), Reason("OUTSIDE_FX_TOLERANCE")),
    ),
    Status(
        "DUPLICATE_PAYMENT", NEEDS_ACTION,
        {"en": "Duplicate payment", "es": "Pago duplicado"},
        {"en": "Another CIP paid an order that was already paid.",
         "es": "Otro CIP pagó un pedido que ya estaba pagado."},
        (Reason("PAID_AGAIN", refund_candidate=True, refund_reason="DUPLICATE_PAYMENT"),),
        primary=False,
    ),
    Status(
        "PAID_CANCELLED_ORDER", NEEDS_ACTION,
        {"en": "Cancelled order paid", "es": "Pedido anulado pagado"},
        {"en": "The store cancelled the order, but a CIP for it was paid.",
         "es": "La tienda anuló el pedido, pero se pagó un CIP para él."},
        (Reason("ORDER_CANCELLED", refund_candidate=True, refund_reason="PAID_CANCELLED_ORDER"),),
    ),
    Status(
        "ORPHAN_PAYMENT", NEEDS_ACTION,
        {"en": "Payment without order", "es": "Pago sin pedido"},
        {"en": "A paid CIP whose reference matches no PagoEfectivo order of the store, or that carries no reference.",
         "es": "Un CIP pagado cuya referencia no coincide con ningún pedido PagoEfectivo de la tienda, o que no trae referencia."},
        # Only the buyer who paid twice is refunded by itself; otherwise a person decides.
        (Reason("NO_ORDER"), Reason("ORDER_PAID_OTHER_METHOD", refund_candidate=True), Reason("NO_REFERENCE")),
        primary=False,
    ),
    Status(
        "REVERSED", NEEDS_ACTION,
        {"en": "Reversed (extorno)", "es": "Extornado"},
        {"en": "The bank reversed the order's only payment: the order is unpaid again.",
         "es": "El banco revirtió (extornó) el único pago del pedido: el pedido vuelve a estar impago."},
        (Reason("EXTORNO"),),
    ),
    Status(
        "MISSING_PAYMENT", NEEDS_ACTION,
        {"en": "Payment missing", "es": "Pago no encontrado"},
        {"en": "The store marks the order paid, but the statements show no payment after the grace days.",
         "es": "La tienda marca el pedido como pagado, pero los estados de cuenta no muestran el pago pasados los días de gracia."},
        (Reason("NOT_IN_STATEMENTS"),),
    ),
    Status(
        "EXPIRED_UNPAID", CLOSED,
        {"en": "Expired unpaid", "es": "Vencido sin pago"},
        {"en": "The CIP expired or was deleted and the order is not paid.",
         "es": "El CIP venció o fue eliminado y el pedido no está pagado."},
        (Reason("CIP_EXPIRED"), Reason("CIP_DELETED")),
    ),
    Status(
        "AWAITING_PAYMENT", WAITING,
        {"en": "Awaiting payment", "es": "Esperando pago"},
        {"en": "No payment yet; it may still arrive.",
         "es": "Aún no hay pago; todavía puede llegar."},
        (Reason("CIP_PENDING"), Reason("NO_CIP"), Reason("WITHIN_GRACE"), Reason("DUPLICATE_REFERENCE")),
    ),
    Status(
        "CANCELLED_UNPAID", CLOSED,
        {"en": "Cancelled unpaid", "es": "Anulado sin pago"},
        {"en": "Cancelled order, nothing paid: nothing to do.",
         "es": "Pedido anulado y sin pago: nada que hacer."},
        (Reason(None), Reason("DUPLICATE_REFERENCE")),
    ),
)

# reason -> language -> words; one entry per reason code, whatever status carries it
REASON_LABELS: dict[str, dict[str, str]] = {
    "FX_CONVERTED": {"en": "converted at the SBS rate", "es": "convertido al tipo de cambio SBS"},
    "UNDERPAID": {"en": "underpaid", "es": "pago menor"},
    "OVERPAID": {"en": "overpaid", "es": "pago mayor"},
    "NO_FX_RATE": {"en": "no SBS rate known", "es": "sin tipo de cambio SBS"},
    "OUTSIDE_FX_TOLERANCE": {"en": "outside the FX tolerance", "es": "fuera de la tolerancia de tipo de cambio"},
    "PAID_AGAIN": {"en": "paid again", "es": "pagado otra vez"},
    "ORDER_CANCELLED": {"en": "order cancelled", "es": "pedido anulado"},
    "NO_ORDER": {"en": "no order", "es": "sin pedido"},
    "NO_REFERENCE": {"en": "no reference on the CIP", "es": "CIP sin referencia"},
    "ORDER_PAID_OTHER_METHOD": {"en": "order paid by another method", "es": "pedido pagado por otro medio"},
    "EXTORNO": {"en": "extorno", "es": "extorno"},
    "NOT_IN_STATEMENTS": {"en": "not in the statements", "es": "no figura en los estados de cuenta"},
    "CIP_EXPIRED": {"en": "CIP expired", "es": "CIP vencido"},
    "CIP_DELETED": {"en": "CIP deleted", "es": "CIP eliminado"},
    "CIP_PENDING": {"en": "CIP pending", "es": "CIP pendiente"},
    "NO_CIP": {"en": "no CIP yet", "es": "aún sin CIP"},
    "WITHIN_GRACE": {"en": "within the grace days", "es": "dentro de los días de gracia"},
    "DUPLICATE_REFERENCE": {"en": "reference shared with another order", "es": "referencia compartida con otro pedido"},
}


# Read at call time, never copied at import, so the module's tables are the only place to change.
def status_codes() -> tuple[str, ...]:
    """Every status, in the order reports list them."""
    return tuple(s.code for s in STATUSES)


def status(code: str) -> Status | None:
    return next((s for s in STATUSES if s.code == code), None)


def group_of(code: str) -> str:
    """A status this catalog does not know needs a person."""
    found = status(code)
    return found.group if found else NEEDS_ACTION


def secondary_codes() -> tuple[str, ...]:
    """The statuses of a paid CIP's extra row, not of an order's own row."""
    return tuple(s.code for s in STATUSES if not s.primary)


def reason_label(code: str, language: str) -> str | None:
    return REASON_LABELS.get(code, {}).get(language)


# -- the warehouse table ---------------------------------------------------------------------------

TABLE = "status_catalog"
COLUMNS: tuple[tuple[str, str], ...] = (
    ("status", "VARCHAR NOT NULL"),
    ("reason", "VARCHAR"),               # NULL: the status without a reason
    ("status_rank", "INTEGER NOT NULL"),  # the order reports list statuses in
    ("status_group", "VARCHAR NOT NULL"),
    ("primary_item", "BOOLEAN NOT NULL"),
    ("refund_candidate", "BOOLEAN NOT NULL"),
    ("refund_reason", "VARCHAR NOT NULL"),
    *((f"label_{lang}", "VARCHAR NOT NULL") for lang in LANGUAGES),
    *((f"meaning_{lang}", "VARCHAR NOT NULL") for lang in LANGUAGES),
    *((f"reason_label_{lang}", "VARCHAR") for lang in LANGUAGES),
)


def rows() -> list[tuple]:
    """The catalog as `status_catalog` rows, in the order of COLUMNS."""
    return [
        (s.code, r.code, rank, s.group, s.primary, r.refund_candidate, r.refund_reason or r.code or s.code,
         *(s.label[lang] for lang in LANGUAGES), *(s.meaning[lang] for lang in LANGUAGES),
         *(reason_label(r.code, lang) if r.code else None for lang in LANGUAGES))
        for rank, s in enumerate(STATUSES)
        for r in s.reasons
    ]


def fingerprint() -> str:
    """Changes whenever the table or its columns would: the warehouse reseeds on it."""
    return hashlib.sha256(json.dumps([COLUMNS, rows()]).encode("utf-8")).hexdigest()


def seed(con: duckdb.DuckDBPyConnection) -> None:
    """Replace `status_catalog` with this catalog. The caller holds the transaction, so readers
    see the old table or the new one, never a part."""
    existing = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_catalog = current_database() "
        "ORDER BY ordinal_position", [TABLE]
    ).fetchall()]
    if existing != [name for name, _ in COLUMNS]:
        con.execute(f"DROP TABLE IF EXISTS {TABLE}")
        con.execute(f"CREATE TABLE {TABLE} ({', '.join(f'{name} {kind}' for name, kind in COLUMNS)})")
    con.execute(f"DELETE FROM {TABLE}")
    con.executemany(f"INSERT INTO {TABLE} VALUES ({', '.join('?' for _ in COLUMNS)})", rows())
