"""Seeded, deterministic sandbox data: realistic landing files under a PAGORECON_HOME.

``generate()`` first *plans* every store (orders, CIPs and their state changes, all in
memory), each planted kind labelled with the status it is made to reconcile to (``INTENDED``; their
counts are the ``expected`` guide), then *writes* one function per file kind. Money is integer céntimos throughout;
randomness comes only from ``random.Random(seed)`` and generators derived from it.

Layout under ``home``::

    pagorecon.yaml
    landing/orders/<store>/orders_<day>.csv           orders created or changed that day
                                                      (piura_presta, with ``mapped_store``: PrestaShop's export)
    landing/statements/<store>/statement_<day>.csv    one row per CIP state change that day
    landing/statements/<store>/statement_<day>_broken.csv, cips_search_<end>.json
    landing/statements/<store>/notifications_<day>.json  ``cip.paid`` webhooks (lima_shop, cusco_store)
    landing/fx/sbs_<YYYY-MM>.csv                      SBS USD rates, business days only
"""

from __future__ import annotations

import bisect
import csv
import functools
import gc
import io
import json
import pathlib
import random
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import holidays
import yaml

from pagorecon_dagster.reconciliation import catalog as status_catalog

LIMA = timezone(timedelta(hours=-5))
DAY_END = 86399  # last second of a day
DEFAULT_WINDOW = (8 * 3600, 22 * 3600 + 1800)  # orders are placed 08:00-22:30 Lima
EVENING = (19 * 3600 + 1800, DAY_END)  # 19:30-23:59:59 Lima: the UTC date is already tomorrow

STATUSES = status_catalog.status_codes()  # every status a sandbox plants (reconciliation/catalog.py)
CANONICAL_HEADER = [
    "order_id", "created_at", "status", "currency", "total", "discount", "payment_method", "cip",
    "customer_email", "customer_document",
]
STATEMENT_HEADER = [
    "cip", "transaction_code", "operation_number", "status", "currency", "amount", "commission", "igv",
    "date_creation", "date_expiry", "date_payment", "channel", "user_document_type",
    "user_document_number", "user_email",
]
FX_HEADER = ["date", "currency", "buy", "sell"]
SHOPIFY_HEADER = [
    "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at", "Accepts Marketing",
    "Currency", "Subtotal", "Shipping", "Taxes", "Total", "Discount Code", "Discount Amount", "Shipping Method",
    "Created at", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem compare at price",
    "Lineitem sku", "Lineitem requires shipping", "Lineitem taxable", "Lineitem fulfillment status",
    "Billing Name", "Billing Street", "Billing Address1", "Billing Address2", "Billing Company", "Billing City",
    "Billing Zip", "Billing Province", "Billing Country", "Billing Phone", "Shipping Name", "Shipping Street",
    "Shipping Address1", "Shipping Address2", "Shipping Company", "Shipping City", "Shipping Zip",
    "Shipping Province", "Shipping Country", "Shipping Phone", "Notes", "Note Attributes", "Cancelled at",
    "Payment Method", "Payment Reference", "Refunded Amount", "Vendor", "Outstanding Balance", "Employee",
    "Location", "Device ID", "Id", "Tags", "Risk Level", "Source", "Lineitem discount", "Tax 1 Name",
    "Tax 1 Value", "Tax 2 Name", "Tax 2 Value", "Tax 3 Name", "Tax 3 Value", "Tax 4 Name", "Tax 4 Value",
    "Tax 5 Name", "Tax 5 Value", "Phone", "Receipt Number", "Duties", "Billing Province Name",
    "Shipping Province Name", "Payment ID", "Payment Terms Name", "Next Payment Due At", "Payment References",
]
SHOPIFY_INDEX = {column: i for i, column in enumerate(SHOPIFY_HEADER)}
STATUS_CODES = {"paid": "23", "pending": "22", "expired": "21", "deleted": "25", "reversed": "592"}
STATUS_NAMES = {"paid": "Pagado", "pending": "Pendiente", "expired": "Expirado", "deleted": "Eliminado"}

FIRST_NAMES = [
    "José", "María", "Lucía", "Jesús", "Andrés", "Sofía", "Nicolás", "Valentina", "Camila", "Joaquín",
    "Álvaro", "Inés", "Rocío", "Ángel", "Ramón", "Julián", "Fiorella", "Renzo", "Milagros", "Yesenia",
    "Luz", "Nélida", "Germán", "Martín", "Verónica", "Raúl", "Óscar", "Gabriela", "Héctor", "Mónica",
]
LAST_NAMES = [
    "Peña", "Muñoz", "Núñez", "Ñahui", "Quispe", "Mamani", "Huamán", "Rodríguez", "Gutiérrez", "Chávez",
    "Flores", "Ramírez", "Córdova", "Sánchez", "Vásquez", "Rojas", "Castillo", "Díaz", "Pérez", "Álvarez",
    "Condori", "Ticona", "Yupanqui", "Cáceres", "Ibáñez", "Zúñiga", "Benavides", "Santa María",
]
DOMAINS = ["gmail.com", "hotmail.com", "outlook.com", "yahoo.es", "yahoo.com", "icloud.com"]
STREETS = ["Av. Arequipa", "Jr. de la Unión", "Av. La Marina", "Calle Las Begonias", "Av. Ejército",
           "Av. Grau", "Jr. Puno", "Av. Larco", "Calle Santa Catalina", "Av. El Sol"]
CHANNELS = ["BCP", "Interbank", "BBVA", "Scotiabank", "BanBif", "Agente KasNet", "Western Union", "Agente BCP"]
PRODUCTS = [  # (name, sku, price in PEN céntimos)
    ("Polo de algodón pima", "POL-PIMA", 5990), ("Chompa de alpaca", "CHO-ALP", 18990),
    ("Café orgánico Chanchamayo 500 g", "CAF-500", 3850), ("Maca negra en polvo 250 g", "MAC-250", 2490),
    ("Chullo andino tejido a mano", "CHU-AND", 4500), ("Taza de cerámica Chulucanas", "TAZ-CHU", 3200),
    ("Audífonos inalámbricos", "AUD-BT", 12990), ("Zapatillas urbanas", "ZAP-URB", 22990),
    ("Mochila impermeable 25 L", "MOC-25", 14950), ("Cacao en grano 1 kg", "CAC-1K", 4290),
    ("Pisco quebranta 700 ml", "PIS-700", 6990), ("Manta de lana de oveja", "MAN-LAN", 9900),
    ("Libro: Conversación en La Catedral", "LIB-VLL", 5490), ("Funda para celular", "FUN-CEL", 2990),
    ("Aretes de plata 950", "ARE-950", 8900),
]
DISCOUNT_CODES = ["BIENVENIDA10", "FIESTASPATRIAS", "CYBERWOW", "CLIENTEVIP"]
SHIPPING_METHODS = ["Olva Courier", "Shalom", "Recojo en tienda", "Envío express Lima"]

# Planted scenarios: (kind, position in the span as a fraction; each store is nudged by a day).
PLANTED = (
    ("missing_payment", 0.05), ("matched_evening", 0.10), ("fx_converted", 0.15), ("underpaid", 0.20),
    ("expired_unpaid", 0.25), ("duplicate", 0.30), ("reversed", 0.35), ("currency_mismatch", 0.40),
    ("paid_cancelled", 0.45), ("overpaid", 0.55), ("orphan", 0.60), ("orphan_card", 0.65),
    ("cancelled_unpaid", 0.70), ("matched_after_extension", 0.75), ("fx_reverse", 0.80),
    ("matched_evening", 0.90), ("awaiting", 1.0),
)
REGULAR_KINDS = {"matched": 62, "matched_unmarked": 4, "matched_refunded": 3, "matched_usd": 6, "card": 8,
                 "cancelled_unpaid": 5}  # + expired_unpaid / awaiting where they fit (see _draw_kind)
# What each kind should reconcile to (primary row); None: no recon row (card order).
INTENDED = {
    "matched": ("MATCHED", None), "matched_unmarked": ("MATCHED", None), "matched_refunded": ("MATCHED", None),
    "matched_usd": ("MATCHED", None), "matched_evening": ("MATCHED", None), "matched_holiday": ("MATCHED", None),
    "matched_after_extension": ("MATCHED", None), "fx_converted": ("MATCHED", "FX_CONVERTED"),
    "fx_reverse": ("MATCHED", "FX_CONVERTED"), "underpaid": ("AMOUNT_MISMATCH", "UNDERPAID"),
    "overpaid": ("AMOUNT_MISMATCH", "OVERPAID"), "currency_mismatch": ("CURRENCY_MISMATCH", None),
    "duplicate": ("MATCHED", None), "paid_cancelled": ("PAID_CANCELLED_ORDER", None),
    "orphan": ("ORPHAN_PAYMENT", None), "orphan_card": None, "card": None, "reversed": ("REVERSED", None),
    "missing_payment": ("MISSING_PAYMENT", None), "expired_unpaid": ("EXPIRED_UNPAID", None),
    "awaiting": ("AWAITING_PAYMENT", None), "cancelled_unpaid": ("CANCELLED_UNPAID", None),
}


# ---------------------------------------------------------------------------------------------
# Public result
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GeneratedSandbox:
    """What ``generate`` wrote. ``expected`` counts planted statuses (+ QUARANTINED rows);
    ``expected_alerts`` counts the alerts planted on purpose, one per store and day (only
    NOTIFICATION_MISMATCH: alerts that follow from other plants, e.g. VALIDATION_REJECTS, are not
    counted here)."""

    home: pathlib.Path
    store_ids: list[str]
    start: date
    end: date
    files: list[pathlib.Path]
    expected: dict[str, int]
    expected_reasons: dict[str, int] = field(default_factory=dict)
    expected_alerts: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1 << 16)  # the same prices come back again and again
def money(cents: int) -> str:
    """Céntimos as a plain decimal with two places (``12350`` -> ``123.50``)."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def _rate(milli: int) -> str:
    return f"{milli // 1000}.{milli % 1000:03d}"


def _at(day: date, seconds: int) -> datetime:
    return datetime.combine(day, time(), LIMA) + timedelta(seconds=seconds)


def _secs(t: datetime) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _iso(t: datetime) -> str:
    return t.isoformat()  # 2026-07-14T10:23:45-05:00


def _shopify_ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S %z")  # 2026-07-14 10:23:45 -0500


def _fold(text: str) -> str:
    """ASCII for e-mail local parts: 'Peña' -> 'pena'."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return plain.lower().replace(" ", "")


def _ri(rng: random.Random, lo: int, hi: int) -> int:
    """Integer in [lo, hi] (a cheaper ``randint``)."""
    return lo + int(rng.random() * (hi - lo + 1))


def _one(rng: random.Random, seq):
    """An item of ``seq`` (a cheaper ``choice``)."""
    return seq[int(rng.random() * len(seq))]


def _weighted(rng: random.Random, table: tuple[list, list[int]]):
    """Weighted pick from ``(items, cumulative weights)`` (cheaper than ``choices``)."""
    items, cum = table
    return items[bisect.bisect_right(cum, rng.random() * cum[-1])]


def _table(weights: dict) -> tuple[list, list[int]]:
    items, cum, total = list(weights), [], 0
    for item in items:
        total += weights[item]
        cum.append(total)
    return items, cum


def _span(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


PE_METHODS = _table({"PagoEfectivo": 70, "pagoefectivo": 15, "Pago Efectivo": 15})
PAY_DELAYS = _table({0: 65, 1: 25, 2: 10})  # days between the CIP and its payment


# ---------------------------------------------------------------------------------------------
# Context: stores, calendar, exchange rates, identifiers
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoreSpec:
    index: int
    id: str
    name: str
    order_format: str
    reference_field: str
    auto_refund_limit: str
    prefix: str

    @property
    def shopify(self) -> bool:
        return self.order_format == "shopify"

    @property
    def mapped(self) -> bool:
        return self.order_format == "mapped"

    @property
    def name_column(self) -> bool:
        """Canonical stores other than cusco_store carry an extra ``customer_name`` column."""
        return self.order_format == "canonical" and self.id != "cusco_store"


def store_specs(count: int) -> list[StoreSpec]:
    """lima_shop (shopify), cusco_store, arequipa_mart, then store_4, store_5... alternating formats."""
    fixed = [
        ("lima_shop", "Lima Shop", "shopify", "150.00", "LIM"),
        ("cusco_store", "Cusco Store", "canonical", "200.00", "CUS"),
        ("arequipa_mart", "Arequipa Mart", "canonical", "100.00", "ARE"),
    ]
    specs = []
    for i in range(count):
        if i < len(fixed):
            sid, name, fmt, limit, prefix = fixed[i]
        else:
            n = i + 1
            sid, name, limit, prefix = f"store_{n}", f"Store {n}", "150.00", f"S{n:02d}"
            fmt = "shopify" if n % 2 == 0 else "canonical"
        specs.append(StoreSpec(i, sid, name, fmt, "name" if fmt == "shopify" else "order_id", limit, prefix))
    return specs


# The demo's mapped store: a PrestaShop shop whose own export is read through `columns`
# (docs/examples/prestashop.yaml is the same store, documented).
MAPPED_SPEC = ("piura_presta", "Piura Presta", "mapped", "150.00", "PIU")
PRESTASHOP_HEADER = ["ID", "Reference", "New client", "Delivery", "Customer", "Total", "Payment", "Status", "Date"]
PRESTASHOP_STATES = {"pending": "En espera de pago PagoEfectivo", "paid": "Pago aceptado", "cancelled": "Cancelado",
                     "refunded": "Reembolsado"}
PRESTASHOP_SHIPPED = ("Preparación en curso", "Enviado", "Entregado")  # later states of a paid order
PRESTASHOP_COLUMNS = {
    "order_id": "ID",
    "reference": "Reference",
    "created_at": "Date",
    "total": "Total",
    "currency_symbols": {"S/": "PEN", "US$": "USD"},
    "status": {"column": "Status", "map": {
        "En espera de pago PagoEfectivo": "pending",
        "En espera de pago por transferencia bancaria": "pending",
        "En espera de pago contra reembolso": "pending",
        "Pago aceptado": "paid",
        "Pago remoto aceptado": "paid",
        "Preparación en curso": "paid",
        "Enviado": "paid",
        "Entregado": "paid",
        "Cancelado": "cancelled",
        "Reembolsado": "refunded",
    }},
    "payment_method": {"column": "Payment", "map": {
        "PagoEfectivo": True,
        "Transferencia bancaria": False,
        "Pago contra reembolso": False,
        "Tarjeta de crédito (Niubiz)": False,
    }},
}


def presta_reference(n: int) -> str:
    """A PrestaShop-like order reference: nine capital letters, one per order number (a bijection)."""
    x, letters = (n * 2_654_435_761) % 26**9, []
    for _ in range(9):
        x, r = divmod(x, 26)
        letters.append(chr(65 + r))
    return "".join(letters)


class Calendar:
    """Lima business days: no weekends, ``holidays`` PE, nor extra decreed days."""

    def __init__(self, start: date, end: date, extra: list[date]):
        self.holidays = holidays.PE(years=range(start.year - 1, end.year + 2))
        self.extra = set(extra)

    def is_holiday(self, d: date) -> bool:
        return d in self.holidays or d in self.extra

    def is_business(self, d: date) -> bool:
        return d.weekday() < 5 and not self.is_holiday(d)


class FxTable:
    """SBS USD rates in thousandths of a sol; a day with no publication uses the last one."""

    def __init__(self, rates: dict[date, tuple[int, int]]):
        self.rates = rates
        self.days = sorted(rates)

    def sell_on(self, d: date) -> int | None:
        i = bisect.bisect_right(self.days, d)
        return self.rates[self.days[i - 1]][1] if i else None


def plan_fx(rng: random.Random, calendar: Calendar, start: date, end: date) -> FxTable:
    """USD buy/sell around 3.70-3.80 on every business day from a week before ``start``."""
    rates, sell = {}, _ri(rng, 3730, 3770)
    for d in _span(start - timedelta(days=7), end):
        if calendar.is_business(d):
            sell = min(3800, max(3708, sell + _ri(rng, -8, 8)))
            rates[d] = (sell - _ri(rng, 2, 8), sell)
    return FxTable(rates)


class Serials:
    """Unique increasing identifiers (CIPs: 8 digits; operation numbers: 9 digits)."""

    def __init__(self, rng: random.Random, first: int, max_step: int):
        self.rng, self.value, self.max_step = rng, first, max_step

    def next(self) -> str:
        self.value += _ri(self.rng, 1, self.max_step)
        return str(self.value)


@dataclass
class Context:
    start: date
    end: date
    days: list[date]
    calendar: Calendar
    fx: FxTable
    cips: Serials
    operations: Serials
    holiday_days: list[date]


# ---------------------------------------------------------------------------------------------
# Plan objects
# ---------------------------------------------------------------------------------------------
@dataclass
class Customer:
    first: str
    last: str
    email: str
    doc_type: str
    doc_number: str
    phone: str
    street: str

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass
class CipEvent:
    state: str  # pending | paid | expired | deleted | reversed
    when: datetime
    expiry: datetime
    numeric: bool  # written as the numeric status code


@dataclass
class Order:
    kind: str
    created: datetime
    currency: str
    lines: list[tuple[str, str, int, int]]  # name, sku, unit céntimos, quantity
    discount: int
    discount_code: str
    shipping: int
    shipping_method: str
    method: str
    pagoefectivo: bool
    customer: Customer
    naive_ts: bool
    variant: int  # 0..99, picks cosmetic variants
    states: list[tuple[datetime, str]] = field(default_factory=list)  # pending|paid|cancelled|refunded
    ref: str = ""
    shopify_id: int = 0
    number: int = 0  # the shop's own order number (PrestaShop's `ID`)
    cip: str = ""
    refunded: int = 0
    subtotal: int = 0  # line items less the discount
    total: int = 0  # what the CIP should carry: subtotal + shipping (IGV included)

    def __post_init__(self) -> None:
        self.subtotal = sum(unit * qty for _, _, unit, qty in self.lines) - self.discount
        self.total = self.subtotal + self.shipping


@dataclass
class Cip:
    cip: str
    order: Order | None
    orphan_ref: str
    ref_style: int
    currency: str
    amount: int
    customer: Customer
    created: datetime
    events: list[CipEvent]
    payment: datetime | None = None
    operation: str = ""
    channel: str = ""
    fee_known: bool = True

    @property
    def final(self) -> CipEvent:
        return self.events[-1]

    def sent_ref(self, store: StoreSpec) -> str:
        """The transactionCode as the store sent it (``1001``/``#1001``; ``cus-000123``, `` CUS-000123 ``)."""
        ref = self.order.ref if self.order else self.orphan_ref
        if store.shopify:
            return ref.lstrip("#") if self.ref_style < 50 else ref
        if self.ref_style < 10:
            return ref.lower()
        if self.ref_style < 18:
            return f" {ref} "
        return ref


@dataclass
class StorePlan:
    store: StoreSpec
    orders: list[Order]
    cips: list[Cip]


# ---------------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------------
class StorePlanner:
    """Plans one store: regular orders every day plus the planted scenarios."""

    def __init__(self, ctx: Context, store: StoreSpec, rng: random.Random, pena_day: date | None):
        self.ctx, self.store, self.rng = ctx, store, rng
        self.orders: list[Order] = []
        self.cips: list[Cip] = []
        self.customers = self._customers(max(40, len(ctx.days) * 4))
        self.pena = next(c for c in self.customers if c.last == "Peña")
        self.pena_day = pena_day
        self._forced: Customer | None = None
        self.next_number = 1001 if store.shopify else _ri(rng, 100, 900)
        self.next_shopify_id = _ri(rng, 5_100_000_000_000, 5_900_000_000_000)
        self.orphans = 0
        self._kind_tables: dict[tuple[bool, bool], tuple[list, list[int]]] = {}

    # -- customers ---------------------------------------------------------------------------
    def _customers(self, count: int) -> list[Customer]:
        r = self.rng
        people = [("José", "Peña"), ("María", "Muñoz"), ("Jesús", "Núñez"), ("Lucía", "Ñahui")]
        people += [(_one(r, FIRST_NAMES), _one(r, LAST_NAMES)) for _ in range(count - len(people))]
        out = []
        for first, last in people:
            sep = _one(r, [".", "_", ""])
            email = f"{_fold(first)}{sep}{_fold(last)}{_one(r, ['', str(_ri(r, 1, 99))])}@{_one(r, DOMAINS)}"
            if r.random() < 0.9:
                doc_type, doc = "DNI", f"{_ri(r, 10_000_000, 79_999_999)}"
            else:
                doc_type, doc = "PAS", f"{_one(r, 'ABCEFGHKLMNPRSTUVX')}{_ri(r, 1_000_000, 9_999_999)}"
            phone = f"+51 9{_ri(r, 10_000_000, 99_999_999)}"
            street = f"{_one(r, STREETS)} {_ri(r, 100, 2999)}"
            out.append(Customer(first, last, email, doc_type, doc, phone, street))
        return out

    # -- time helpers --------------------------------------------------------------------------
    def _after(self, t: datetime, days: int = 0, window: tuple[int, int] = (7 * 3600, DAY_END)) -> datetime:
        """A moment ``days`` later (never past the span), inside ``window``, strictly after ``t``."""
        day = min(t.date() + timedelta(days=days), self.ctx.end)
        lo, hi = window
        if day <= t.date():
            day, lo = t.date(), max(lo, _secs(t) + 300)
            if lo > hi:
                lo, hi = min(_secs(t) + 300, DAY_END), DAY_END
        return _at(day, _ri(self.rng, lo, hi))

    def _soon(self, t: datetime, lo: int = 30, hi: int = 600) -> datetime:
        """A few seconds/minutes after ``t``, same Lima day."""
        return min(t + timedelta(seconds=_ri(self.rng, lo, hi)), _at(t.date(), DAY_END))

    # -- building blocks -----------------------------------------------------------------------
    def _order(self, day: date, *, currency: str = "PEN", pagoefectivo: bool = True,
               window: tuple[int, int] = DEFAULT_WINDOW, discount: bool | None = None) -> Order:
        r = self.rng
        customer, self._forced = self._forced or _one(r, self.customers), None
        lines = []
        for name, sku, pen in r.sample(PRODUCTS, _one(r, [1, 1, 1, 2, 2, 3])):
            unit = pen if currency == "PEN" else (pen * 100 // 375 // 100) * 100 + 99
            lines.append((name, sku, unit, _one(r, [1, 1, 1, 2, 3])))
        gross = sum(u * q for _, _, u, q in lines)
        if discount is None:
            discount = r.random() < 0.25
        disc = max(100, gross // 10 // 100 * 100) if discount else 0
        shipping = _one(r, [0, 1000, 1500, 2000] if currency == "PEN" else [0, 500])
        if pagoefectivo:
            method = _weighted(r, PE_METHODS)
        else:
            method = "Shopify Payments" if self.store.shopify else _one(r, ["card", "card", "Tarjeta"])
        o = Order(
            kind="", created=_at(day, _ri(r, *window)), currency=currency, lines=lines, discount=disc,
            discount_code=_one(r, DISCOUNT_CODES) if disc else "", shipping=shipping,
            shipping_method=_one(r, SHIPPING_METHODS), method=method, pagoefectivo=pagoefectivo,
            customer=customer, naive_ts=r.random() < 0.6, variant=_ri(r, 0, 99),
        )
        o.states.append((o.created, "pending"))
        self.orders.append(o)
        return o

    def _cip(self, order: Order | None, *, currency: str | None = None, amount: int | None = None,
             after: datetime | None = None, expiry_hours: int = 48, orphan_ref: str = "",
             customer: Customer | None = None) -> Cip:
        r = self.rng
        created = self._soon((after or order.created), 60, 360)
        c = Cip(
            cip=self.ctx.cips.next(), order=order, orphan_ref=orphan_ref, ref_style=_ri(r, 0, 99),
            currency=currency or order.currency, amount=order.total if amount is None else amount,
            customer=customer or order.customer, created=created, events=[],
        )
        c.events.append(CipEvent("pending", created, created + timedelta(hours=expiry_hours), r.random() < 0.15))
        if order is not None and order.pagoefectivo and not order.cip:
            order.cip = c.cip
        self.cips.append(c)
        return c

    def _event(self, c: Cip, state: str, when: datetime, expiry: datetime | None = None) -> None:
        c.events.append(CipEvent(state, when, expiry or c.final.expiry, self.rng.random() < 0.15))

    def _pay(self, c: Cip, when: datetime, expiry: datetime | None = None) -> None:
        c.payment, c.operation = when, self.ctx.operations.next()
        c.channel, c.fee_known = _one(self.rng, CHANNELS), self.rng.random() < 0.9
        self._event(c, "paid", when, expiry)

    def _pay_time(self, c: Cip, delay: int | None = None, window=(7 * 3600, DAY_END)) -> datetime:
        if delay is None:
            delay = _weighted(self.rng, PAY_DELAYS)
        paid = self._after(c.created, delay, window)
        return min(paid, c.final.expiry - timedelta(seconds=_ri(self.rng, 60, 3600)))

    def _mark(self, o: Order, when: datetime, status: str) -> None:
        o.states.append((when, status))

    # -- scenario kinds (one method each) ------------------------------------------------------
    def _k_matched(self, day, currency="PEN", mark="paid", window=DEFAULT_WINDOW, pay_window=None, delay=None):
        o = self._order(day, currency=currency, window=window)
        c = self._cip(o)
        paid = self._pay_time(c, delay, pay_window or (7 * 3600, DAY_END))
        self._pay(c, paid)
        if mark in ("paid", "refunded"):
            self._mark(o, self._soon(paid), "paid")
        if mark == "refunded":
            o.refunded = o.total if o.variant < 60 or not self.store.shopify else o.total // 200 * 100
            self._mark(o, self._after(o.states[-1][0], _ri(self.rng, 1, 3)), "refunded")
        return o

    def _k_matched_unmarked(self, day):  # the store never got the webhook: still pending
        return self._k_matched(day, mark=None)

    def _k_matched_refunded(self, day):
        return self._k_matched(day, mark="refunded")

    def _k_matched_usd(self, day):
        return self._k_matched(day, currency="USD")

    def _k_matched_evening(self, day):
        return self._k_matched(day, window=(18 * 3600, 21 * 3600), pay_window=EVENING, delay=0)

    def _k_matched_holiday(self, day):  # placed the day before a holiday, paid on the holiday night
        return self._k_matched(day, pay_window=EVENING, delay=1)

    def _k_matched_after_extension(self, day):
        o = self._order(day)
        c = self._cip(o, expiry_hours=24)
        expired = self._soon(c.final.expiry, 60, 900)
        if expired.date() <= self.ctx.end:
            self._event(c, "expired", expired)
        paid = self._after(min(expired, _at(self.ctx.end, DAY_END)), 1)
        self._pay(c, paid, expiry=paid + timedelta(hours=24))
        self._mark(o, self._soon(paid), "paid")

    def _fx_pay(self, day, order_currency: str):
        o = self._order(day, currency=order_currency)
        c = self._cip(o)
        paid = self._pay_time(c, 0)
        sell, skew = self.ctx.fx.sell_on(paid.date()), 1000 + _ri(self.rng, -4, 4)  # within ±0.4%
        if order_currency == "PEN":  # paid in USD
            c.currency, c.amount = "USD", (o.total * 1000 * skew + sell * 500) // (sell * 1000)
        else:  # USD order paid in PEN
            c.currency, c.amount = "PEN", (o.total * sell * skew + 500_000) // 1_000_000
        self._pay(c, paid)
        self._mark(o, self._soon(paid), "paid")

    def _k_fx_converted(self, day):
        self._fx_pay(day, "PEN")

    def _k_fx_reverse(self, day):
        self._fx_pay(day, "USD")

    def _mismatch(self, day, amount_of, currency=None, discount=None):
        o = self._order(day, discount=discount)
        c = self._cip(o, amount=amount_of(o), currency=currency)
        paid = self._pay_time(c)
        self._pay(c, paid)
        self._mark(o, self._soon(paid), "paid")

    def _k_underpaid(self, day):  # the CIP left out part of the order (e.g. shipping)
        self._mismatch(day, lambda o: o.total - (500 if o.total > 2000 else 100))

    def _k_overpaid(self, day):  # the CIP was generated before the discount
        self._mismatch(day, lambda o: o.total + o.discount, discount=True)

    def _k_currency_mismatch(self, day):  # soles amount sent as dollars
        self._mismatch(day, lambda o: o.total, currency="USD")

    def _k_duplicate(self, day):
        o = self._order(day)
        first = self._cip(o)
        second = self._cip(o, after=self._soon(first.created, 300, 3600))
        paid = self._pay_time(first, 0)
        self._pay(first, paid)
        self._mark(o, self._soon(paid), "paid")
        self._pay(second, self._after(paid, 1))

    def _k_paid_cancelled(self, day):
        o = self._order(day)
        c = self._cip(o)
        cancel = self._after(c.created, 1, (9 * 3600, 12 * 3600))
        self._mark(o, cancel, "cancelled")
        self._pay(c, self._after(cancel, 0, EVENING))

    def _orphan_ref(self) -> str:
        self.orphans += 1
        n = 90000 + self.orphans
        if self.store.mapped:
            return presta_reference(n + 800000)
        return f"#{n}" if self.store.shopify else f"{self.store.prefix}-{n + 800000:06d}"

    def _k_orphan(self, day):
        customer = _one(self.rng, self.customers)
        created = _at(day, _ri(self.rng, *DEFAULT_WINDOW))
        c = self._cip(None, currency="PEN", amount=_ri(self.rng, 20, 400) * 100 + _one(self.rng, [0, 50, 90]),
                      after=created, orphan_ref=self._orphan_ref(), customer=customer)
        self._pay(c, self._pay_time(c, 0))

    def _k_orphan_card(self, day):  # bought by card, then paid the old CIP too
        o = self._order(day, pagoefectivo=False)
        self._mark(o, self._soon(o.created), "paid")
        c = self._cip(o)
        self._pay(c, self._after(c.created, 1))

    def _k_card(self, day):
        o = self._order(day, pagoefectivo=False)
        self._mark(o, self._soon(o.created), "paid")

    def _k_reversed(self, day):
        o = self._order(day)
        c = self._cip(o)
        paid = self._pay_time(c, 0)
        self._pay(c, paid)
        self._mark(o, self._soon(paid), "paid")
        reversal = self._after(paid, 2, (9 * 3600, 18 * 3600))
        self._event(c, "reversed", reversal)
        if o.variant < 50:  # some stores put the order back to pending, others never notice
            self._mark(o, self._soon(reversal), "pending")

    def _k_missing_payment(self, day):  # marked paid by hand, the CIP was never paid
        o = self._order(day)
        c = self._cip(o)
        self._mark(o, self._soon(c.created, 1800, 7200), "paid")

    def _k_expired_unpaid(self, day):
        o = self._order(day)
        c = self._cip(o, expiry_hours=24)
        expired = self._soon(c.final.expiry, 60, 900)
        if o.variant < 50 and expired.date() <= self.ctx.end:
            self._event(c, "expired", expired)

    def _k_awaiting(self, day):
        self._cip(self._order(day), expiry_hours=72)

    def _k_cancelled_unpaid(self, day):
        o = self._order(day)
        c = self._cip(o)
        cancel = self._after(c.created, _ri(self.rng, 0, 2))
        self._mark(o, cancel, "cancelled")
        if self.rng.random() < 0.6:
            self._event(c, "deleted", self._soon(cancel))

    # -- the plan ------------------------------------------------------------------------------
    def _placements(self) -> dict[int, list[str]]:
        last = len(self.ctx.days) - 1
        nudge = self.store.index % 3 - 1
        out: dict[int, list[str]] = defaultdict(list)
        for kind, frac in PLANTED:
            i = last if frac >= 1.0 else min(last, max(0, round(frac * last) + nudge))
            out[i].append(kind)
        for h in self.ctx.holiday_days[:1]:  # a payment made on the first holiday's night
            i = (h - self.ctx.start).days - 1
            if i >= 0:
                out[i].append("matched_holiday")
        return out

    def _draw_kind(self, i: int) -> str:
        """A regular order's kind; expiries only where they can lapse, awaiting only at the end."""
        last = len(self.ctx.days) - 1
        key = (i <= last - 3, i >= last - 1)
        if key not in self._kind_tables:
            weights = dict(REGULAR_KINDS)
            if key[0]:
                weights["expired_unpaid"] = 4
            if key[1]:
                weights["awaiting"] = 12
            self._kind_tables[key] = _table(weights)
        return _weighted(self.rng, self._kind_tables[key])

    def plan(self, orders_per_day: int) -> StorePlan:
        planted = self._placements()
        for i, day in enumerate(self.ctx.days):
            kinds = [self._draw_kind(i) for _ in range(orders_per_day)] + planted.get(i, [])
            before = len(self.orders)
            for n, kind in enumerate(kinds):
                if n == 0 and day == self.pena_day:
                    self._forced = self.pena
                count = len(self.orders)
                getattr(self, f"_k_{kind}")(day)
                for o in self.orders[count:]:
                    o.kind = kind
            self._number(self.orders[before:])
        return StorePlan(self.store, self.orders, self.cips)

    def _number(self, new: list[Order]) -> None:
        """Order references grow with creation time, as a store assigns them."""
        for o in sorted(new, key=lambda o: o.created):
            n, self.next_number = self.next_number, self.next_number + 1
            o.ref = f"#{n}" if self.store.shopify else presta_reference(n) if self.store.mapped else f"{self.store.prefix}-{n:06d}"
            o.number = n
            self.next_shopify_id += _ri(self.rng, 1_000, 90_000)
            o.shopify_id = self.next_shopify_id


# ---------------------------------------------------------------------------------------------
# Intended statuses (the `expected` guide): the labels each planted kind was made for
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IntendedItem:
    store_id: str
    status: str
    reason: str | None


def intended(plan: StorePlan) -> list[IntendedItem]:
    """The reconciled items the plan was made to produce: each PagoEfectivo order's INTENDED
    primary row, one DUPLICATE_PAYMENT per extra paid CIP of an order, and one ORPHAN_PAYMENT per
    paid CIP without a PagoEfectivo order (ORDER_PAID_OTHER_METHOD when it belongs to a card order)."""
    sid, items = plan.store.id, []
    paid: dict[int, int] = Counter()
    for c in plan.cips:
        if c.final.state != "paid":
            continue
        if c.order is None or not c.order.pagoefectivo:
            items.append(IntendedItem(sid, "ORPHAN_PAYMENT", None if c.order is None else "ORDER_PAID_OTHER_METHOD"))
        else:
            paid[id(c.order)] += 1
    for o in plan.orders:
        if o.pagoefectivo:
            items.append(IntendedItem(sid, *INTENDED[o.kind]))
            items += [IntendedItem(sid, "DUPLICATE_PAYMENT", None)] * max(paid[id(o)] - 1, 0)
    return items


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
class Writer:
    """Collects written files; all text goes through ``csv``/``json`` into exact bytes."""

    def __init__(self, home: pathlib.Path):
        self.home, self.files = home, []

    def write(self, rel: str, data: bytes) -> None:
        path = self.home / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.files.append(path)

    def csv(self, rel: str, rows: list[list[str]], *, newline: str = "\n", encoding: str = "utf-8") -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator=newline).writerows(rows)
        self.write(rel, buf.getvalue().encode(encoding))

    def json(self, rel: str, payload) -> None:
        text = json.dumps(payload, ensure_ascii=False, indent=2)
        text = re.sub(r'"@@NUM:([0-9.]+)@@"', r"\1", text)  # money sent as a bare JSON number
        self.write(rel, (text + "\n").encode("utf-8"))


def _json_amount(cents: int, as_number: bool) -> str:
    if not as_number:
        return money(cents)
    text = money(cents).rstrip("0").rstrip(".")
    return f"@@NUM:{text}@@"


def write_config(w: Writer, specs: list[StoreSpec], extra_days: list[date]) -> None:
    config = {
        "stores": [
            {"id": s.id, "name": s.name, "order_format": s.order_format, "reference_field": s.reference_field,
             "auto_refund_limit": s.auto_refund_limit, **({"columns": PRESTASHOP_COLUMNS} if s.mapped else {})}
            for s in specs
        ],
        "start_date": "2024-01-01",
        "fx_tolerance_pct": 1.0,
        "missing_payment_grace_business_days": 2,
        "extra_non_working_days": [d.isoformat() for d in extra_days],
        "alerts": {"refund_rate_pct": 5.0},
        # finance gets the reports as .eml files in mailbox/ (no mail server needed)
        "email": {"delivery": "file",
                  "recipients": [{"address": "finanzas@example.pe", "language": "es", "stores": "all", "files": "attach"}]},
    }
    text = "# pagorecon sandbox configuration (written by pagorecon_dagster.sandbox.generator)\n"
    text += yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    w.write("pagorecon.yaml", text.encode("utf-8"))


def write_fx(w: Writer, fx: FxTable) -> None:
    by_month: dict[str, list[list[str]]] = defaultdict(list)
    for d in fx.days:
        buy, sell = fx.rates[d]
        by_month[d.strftime("%Y-%m")].append([d.isoformat(), "USD", _rate(buy), _rate(sell)])
    for month, rows in sorted(by_month.items()):
        w.csv(f"landing/fx/sbs_{month}.csv", [FX_HEADER] + rows)


def _snapshots(plan: StorePlan) -> dict[date, list[tuple[Order, int]]]:
    """Per day, the orders created or changed that day with the index of their end-of-day state."""
    out: dict[date, list[tuple[Order, int]]] = defaultdict(list)
    for o in plan.orders:
        last_by_day: dict[date, int] = {}
        for i, (when, _) in enumerate(o.states):
            last_by_day[when.date()] = i
        for d, i in last_by_day.items():
            out[d].append((o, i))
    for rows in out.values():
        rows.sort(key=lambda item: (item[0].created, item[0].ref))
    return out


def _canonical_row(o: Order, state_index: int, with_name: bool) -> list[str]:
    ts = o.created.strftime("%Y-%m-%d %H:%M:%S") if o.naive_ts else _iso(o.created)
    row = [o.ref, ts, o.states[state_index][1], o.currency, money(o.total), money(o.discount), o.method,
           o.cip, o.customer.email, o.customer.doc_number]
    return row + [o.customer.name] if with_name else row


def _canonical_broken_rows(store: StoreSpec, day: date, with_name: bool) -> list[list[str]]:
    """Three order rows that must be quarantined."""
    ts = f"{day.isoformat()} 11:15:00"
    rows = [
        [f"{store.prefix}-900001", ts, "pending", "PEN", "S/ 20.00", "0.00", "PagoEfectivo", "",
         "ines.rojas@gmail.com", "44556677"],
        [f"{store.prefix}-900002", ts, "pending", "PEN", "1,234.50", "0.00", "PagoEfectivo", "",
         "raul.condori@hotmail.com", "40011223"],
        [f"{store.prefix}-900003", f"{day.strftime('%d/%m/%Y')} 25:61", "paid", "PEN", "45.00", "0.00",
         "PagoEfectivo", "", "monica.zuniga@yahoo.es", "41234987"],
    ]
    return [r + ["Cliente de prueba"] for r in rows] if with_name else rows


def write_canonical_orders(w: Writer, plan: StorePlan, ctx: Context, variants: dict[date, str],
                           broken_day: date | None) -> int:
    """One file per order day; returns the number of deliberately broken rows written."""
    store, snaps, broken = plan.store, _snapshots(plan), 0
    header = CANONICAL_HEADER + (["customer_name"] if store.name_column else [])
    for day in ctx.days:
        rows = [header] + [_canonical_row(o, i, store.name_column) for o, i in snaps.get(day, [])]
        if day == broken_day:
            extra = _canonical_broken_rows(store, day, store.name_column)
            rows, broken = rows + extra, len(extra)
        variant = variants.get(day)
        encoding = {"bom": "utf-8-sig", "cp1252": "cp1252"}.get(variant, "utf-8")
        newline = "\r\n" if variant == "crlf" else "\n"
        w.csv(f"landing/orders/{store.id}/orders_{day.isoformat()}.csv", rows, newline=newline, encoding=encoding)
    return broken


def _shopify_financial(o: Order, state_index: int) -> tuple[str, str, str]:
    """(Financial Status, Paid at, Cancelled at) for the order's state at ``state_index``."""
    states = o.states[: state_index + 1]
    status = states[-1][1]
    paid_at = next((_shopify_ts(t) for t, s in reversed(states) if s == "paid"), "")
    if status == "pending":
        return ("authorized" if o.variant % 10 == 0 else "pending"), "", ""
    if status == "paid":
        return "paid", paid_at, ""
    if status == "refunded":
        return ("partially_refunded" if o.refunded < o.total else "refunded"), paid_at, ""
    cancelled_at = _shopify_ts(states[-1][0])
    return ("voided" if o.variant < 50 else "pending"), "", cancelled_at


def _shopify_rows(o: Order, state_index: int, store: StoreSpec) -> list[list[str]]:
    financial, paid_at, cancelled_at = _shopify_financial(o, state_index)
    is_paid = financial in ("paid", "refunded", "partially_refunded")
    fulfilled = is_paid and o.variant % 3 != 0
    refunded = o.refunded if financial in ("refunded", "partially_refunded") else 0
    c = o.customer
    payment_ref = f"c{o.shopify_id // 1000 + 31_000_000_000}.1"
    address = {"Street": c.street, "Address1": c.street, "Address2": "", "Company": "", "City": "Lima",
               "Zip": "15046", "Province": "LIM", "Country": "PE", "Phone": c.phone}
    order_level = {
        "Financial Status": financial, "Paid at": paid_at,
        "Fulfillment Status": "fulfilled" if fulfilled else "unfulfilled",
        "Fulfilled at": paid_at if fulfilled else "", "Accepts Marketing": "yes" if o.variant % 2 else "no",
        "Currency": o.currency, "Subtotal": money(o.subtotal), "Shipping": money(o.shipping),
        "Taxes": money(o.total * 18 // 118), "Total": money(o.total), "Discount Code": o.discount_code,
        "Discount Amount": money(o.discount), "Shipping Method": o.shipping_method,
        "Created at": _shopify_ts(o.created), "Billing Name": c.name, "Shipping Name": c.name,
        "Notes": "", "Note Attributes": f"cip: {o.cip}" if o.cip else "", "Cancelled at": cancelled_at,
        "Payment Method": o.method, "Payment Reference": payment_ref, "Refunded Amount": money(refunded),
        "Outstanding Balance": money(0 if is_paid else o.total), "Id": str(o.shopify_id),
        "Tags": "pagoefectivo" if o.pagoefectivo else "", "Risk Level": "Low", "Source": "web",
        "Tax 1 Name": "IGV 18%", "Tax 1 Value": money(o.total * 18 // 118), "Phone": c.phone,
        "Billing Province Name": "Lima", "Shipping Province Name": "Lima", "Payment ID": payment_ref,
        "Payment References": payment_ref,
    }
    for key, value in address.items():
        order_level[f"Billing {key}"] = value
        order_level[f"Shipping {key}"] = value
    rows = []
    for n, (name, sku, unit, qty) in enumerate(o.lines):
        line = {
            "Name": o.ref, "Email": c.email, "Lineitem quantity": str(qty), "Lineitem name": name,
            "Lineitem price": money(unit), "Lineitem compare at price": "", "Lineitem sku": sku,
            "Lineitem requires shipping": "true", "Lineitem taxable": "true",
            "Lineitem fulfillment status": "fulfilled" if fulfilled else "pending", "Vendor": store.name,
            "Lineitem discount": "0.00",
        }
        row = [""] * len(SHOPIFY_HEADER)
        for key, value in (order_level.items() if n == 0 else ()):
            row[SHOPIFY_INDEX[key]] = value
        for key, value in line.items():
            row[SHOPIFY_INDEX[key]] = value
        rows.append(row)
    return rows


def _shopify_broken_row(day: date, store: StoreSpec) -> list[str]:
    """A one-line order whose ``Created at`` cannot be parsed."""
    values = {"Name": "#99001", "Email": "hector.ibanez@gmail.com", "Financial Status": "pending",
              "Currency": "PEN", "Subtotal": "80.00", "Shipping": "0.00", "Taxes": "12.20", "Total": "80.00",
              "Discount Amount": "0.00", "Created at": f"{day.strftime('%d/%m/%Y')} 10:23 a. m.",
              "Lineitem quantity": "1", "Lineitem name": "Chullo andino tejido a mano", "Lineitem price": "80.00",
              "Lineitem sku": "CHU-AND", "Payment Method": "PagoEfectivo", "Vendor": store.name,
              "Id": "5999999999999", "Billing Name": "Héctor Ibáñez"}
    return [values.get(col, "") for col in SHOPIFY_HEADER]


def write_shopify_orders(w: Writer, plan: StorePlan, ctx: Context, broken_day: date | None) -> int:
    """Shopify "Export orders" CSVs (CRLF, one row per line item); returns broken rows written."""
    snaps, broken = _snapshots(plan), 0
    for day in ctx.days:
        rows = [SHOPIFY_HEADER]
        for o, i in snaps.get(day, []):
            rows += _shopify_rows(o, i, plan.store)
        if day == broken_day:
            rows.append(_shopify_broken_row(day, plan.store))
            broken = 1
        w.csv(f"landing/orders/{plan.store.id}/orders_{day.isoformat()}.csv", rows, newline="\r\n")
    return broken


def _prestashop_row(o: Order, state_index: int) -> list[str]:
    status = o.states[state_index][1]
    state = PRESTASHOP_SHIPPED[o.variant % 4] if status == "paid" and o.variant % 4 < 3 else PRESTASHOP_STATES[status]
    symbol = "S/" if o.currency == "PEN" else "US$"
    payment = "PagoEfectivo" if o.pagoefectivo else "Tarjeta de crédito (Niubiz)"
    return [str(o.number), o.ref, "Sí" if o.variant % 5 == 0 else "No", "Perú", f"{o.customer.first[0]}. {o.customer.last}",
            f"{symbol} {money(o.total)}", payment, state, o.created.strftime("%Y-%m-%d %H:%M:%S")]


def write_prestashop_orders(w: Writer, plan: StorePlan, ctx: Context, latin1_day: date, broken_day: date | None) -> int:
    """PrestaShop's *Export* of the orders list (`;`, every field quoted, CRLF, UTF-8 with BOM; one
    day re-saved by Excel in Latin-1); returns the broken rows written (a state missing from the map)."""
    snaps, broken = _snapshots(plan), 0
    for day in ctx.days:
        rows = [PRESTASHOP_HEADER] + [_prestashop_row(o, i) for o, i in snaps.get(day, [])]
        if day == broken_day:
            rows.append(["99001", presta_reference(99001), "No", "Perú", "H. Ibáñez", "S/ 80.00", "PagoEfectivo",
                         "Error en pago", f"{day.isoformat()} 10:23:00"])
            broken = 1
        buf = io.StringIO()
        csv.writer(buf, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
        w.write(f"landing/orders/{plan.store.id}/orders_export_{day.isoformat()}.csv",
                buf.getvalue().encode("cp1252" if day == latin1_day else "utf-8-sig"))
    return broken


def _statement_row(c: Cip, e: CipEvent, store: StoreSpec) -> list[str]:
    settled = e.state in ("paid", "reversed")
    commission = (c.amount * 35 + 500) // 1000  # ~3.5%
    igv = (commission * 18 + 50) // 100  # 18% of the commission
    fees = settled and c.fee_known
    return [
        c.cip, c.sent_ref(store), c.operation if settled else "",
        STATUS_CODES[e.state] if e.numeric else e.state, c.currency, money(c.amount),
        money(commission) if fees else "", money(igv) if fees else "",
        _iso(c.created), _iso(e.expiry), _iso(c.payment) if settled else "", c.channel if settled else "",
        c.customer.doc_type, c.customer.doc_number, c.customer.email,
    ]


def _statement_events(plan: StorePlan) -> dict[date, list[tuple[Cip, CipEvent]]]:
    out: dict[date, list[tuple[Cip, CipEvent]]] = defaultdict(list)
    for c in plan.cips:
        for e in c.events:
            out[e.when.date()].append((c, e))
    for rows in out.values():
        rows.sort(key=lambda item: (item[1].when, item[0].cip))
    return out


def write_statements(w: Writer, plan: StorePlan, ctx: Context, variants: dict[date, str]) -> None:
    """One statement per Lima day (weekends and holidays too), one row per CIP state change."""
    events = _statement_events(plan)
    for day in ctx.days:
        rows = [STATEMENT_HEADER] + [_statement_row(c, e, plan.store) for c, e in events.get(day, [])]
        bom_crlf = variants.get(day) == "bom_crlf"
        w.csv(f"landing/statements/{plan.store.id}/statement_{day.isoformat()}.csv", rows,
              newline="\r\n" if bom_crlf else "\n", encoding="utf-8-sig" if bom_crlf else "utf-8")


def write_broken_statement(w: Writer, store: StoreSpec, day: date, ctx: Context) -> int:
    """A ``*_broken.csv`` statement whose every row must be quarantined; returns its row count."""
    base = _at(day, 10 * 3600)
    created, expiry, paid = _iso(base), _iso(base + timedelta(hours=48)), _iso(base + timedelta(hours=2))

    def row(ref, status, currency, amount, date_payment):
        return [ctx.cips.next(), f"{store.prefix}-{ref}", ctx.operations.next(), status, currency, amount,
                "", "", created, expiry, date_payment, "BCP", "DNI", "45678123", "nelida.pena@gmail.com"]

    rows = [
        row("990001", "paid", "PEN", "12.345", paid),
        row("990002", "paid", "PEN", "-5.00", paid),
        row("990003", "paidd", "PEN", "80.00", paid),
        row("990004", "paid", "EUR", "80.00", paid),
        row("990005", "paid", "PEN", "80.00", f"{day.isoformat()}T25:61:00-05:00"),
    ]
    w.csv(f"landing/statements/{store.id}/statement_{day.isoformat()}_broken.csv", [STATEMENT_HEADER] + rows)
    return len(rows)


def write_notifications(w: Writer, notified: NotifiedStore, rng: random.Random) -> None:
    """Per payment day, one ``cip.paid`` webhook body per notified payment; one delivery repeated."""
    for day, paid in notified.paid_by_day.items():
        bodies = [
            {"eventType": "cip.paid", "operationNumber": c.operation,
             "data": {"cip": c.cip, "currency": c.currency, "amount": _json_amount(c.amount, rng.random() < 0.5),
                      "paymentDate": _iso(c.payment), "transactionCode": c.sent_ref(notified.store)}}
            for c in paid
        ]
        bodies.append(json.loads(json.dumps(bodies[len(bodies) // 2])))  # the same delivery again
        w.json(f"landing/statements/{notified.store.id}/notifications_{day.isoformat()}.json", bodies)


def write_cips_search(w: Writer, plan: StorePlan, day: date, rng: random.Random) -> None:
    """A ``/v1/cips/search`` reply (saved on ``day``) restating a few recent CIPs in their final state."""
    recent = day - timedelta(days=2)
    chosen = [c for c in plan.cips if c.final.state in ("paid", "pending") and c.created.date() >= recent][-6:]
    data = []
    for c in chosen:
        state = c.final.state
        data.append({
            "cip": int(c.cip), "transactionCode": c.sent_ref(plan.store),
            "amount": _json_amount(c.amount, rng.random() < 0.5), "currency": c.currency,
            "status": int(STATUS_CODES[state]), "statusName": STATUS_NAMES[state],
            "dateCreation": _iso(c.created), "dateExpiry": _iso(c.final.expiry),
            "datePayment": _iso(c.payment) if state == "paid" else None, "dateRemoval": None,
        })
    w.json(f"landing/statements/{plan.store.id}/cips_search_{day.isoformat()}.json",
           {"code": 100, "message": "OK", "data": data})


# ---------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------
def _pick(days: list[date], frac: float) -> date:
    return days[min(len(days) - 1, round(frac * (len(days) - 1)))]


def _holidays_in_span(start: date, end: date) -> tuple[list[date], list[date]]:
    """(non-working holidays in the span, extra decreed days added when the span has none)."""
    calendar = Calendar(start, end, [])
    found = [d for d in _span(start, end) if calendar.is_holiday(d) and d.weekday() < 5]
    if found:
        return found, []
    weekdays = [d for d in _span(start, end) if d.weekday() < 5 and d > start]
    extra = [weekdays[len(weekdays) // 2]] if weekdays else []
    return extra, extra


@dataclass(frozen=True)
class NotifiedStore:
    """A store that receives PagoEfectivo webhooks: from its first notification on, every payment
    the statements show is notified (``paid_by_day``), except ``lost``, the one webhook that never
    arrived (the planted NOTIFICATION_MISMATCH)."""

    store: StoreSpec
    paid_by_day: dict[date, list[Cip]]
    lost: Cip | None


def plan_notifications(ctx: Context, plans: list[StorePlan]) -> list[NotifiedStore]:
    """lima_shop is notified from early in the span (its first holiday included), cusco_store from
    mid-span; each loses the webhook of one plain matched payment made after its first notification."""
    holiday = ctx.holiday_days[0] if ctx.holiday_days else _pick(ctx.days, 0.5)
    starts: dict[int, date] = {}
    for i, day in ((0, min(_pick(ctx.days, 0.1), holiday)), (min(1, len(plans) - 1), _pick(ctx.days, 0.5))):
        starts[i] = min(day, starts.get(i, day))
    notified = []
    for i, first in starts.items():
        events = _statement_events(plans[i])
        paid_by_day: dict[date, list[Cip]] = {}
        for day in ctx.days[ctx.days.index(first):]:
            paid = [c for c, e in events.get(day, []) if e.state == "paid"]
            if paid:
                paid_by_day[day] = paid
        # after the first notified day, so the store already counts as receiving notifications
        later = [c for day in list(paid_by_day)[1:] for c in paid_by_day[day]]
        plain = [c for c in later if c.order is not None and c.order.kind == "matched"] or later
        lost = plain[len(plain) // 2] if plain else None
        if lost is not None:
            day = lost.payment.date()
            paid_by_day[day] = [c for c in paid_by_day[day] if c is not lost]
            if not paid_by_day[day]:
                del paid_by_day[day]
        notified.append(NotifiedStore(plans[i].store, paid_by_day, lost))
    return notified


def generate(home: pathlib.Path, *, stores: int = 3, days: int = 21, start: date = date(2026, 7, 13),
             seed: int = 7, orders_per_day: int = 12, broken_rows: bool = True,
             mapped_store: bool = False) -> GeneratedSandbox:
    """Write a deterministic sandbox (config + landing files) under ``home``; with ``mapped_store``,
    one more store, piura_presta, whose orders are PrestaShop's own export (``order_format: mapped``)."""
    if stores < 1 or days < 1 or orders_per_day < 0:
        raise ValueError("stores and days must be >= 1 and orders_per_day >= 0")
    paused = gc.isenabled()
    gc.disable()  # the plan is millions of small live objects: cyclic GC passes only cost time
    try:
        return _generate(pathlib.Path(home), stores, days, start, seed, orders_per_day, broken_rows, mapped_store)
    finally:
        if paused:
            gc.enable()


@dataclass
class SandboxPlan:
    """Everything decided before writing: the calendar/rates context and each store's plan."""

    ctx: Context
    specs: list[StoreSpec]
    stores: list[StorePlan]
    extra_days: list[date]
    latin1_store: StoreSpec | None
    latin1_day: date
    broken_rows: bool
    write_seed: int
    notified: list[NotifiedStore]

    def intended(self) -> list[IntendedItem]:
        return [item for plan in self.stores for item in intended(plan)]


def plan_sandbox(*, stores: int, days: int, start: date, seed: int, orders_per_day: int,
                 broken_rows: bool, mapped_store: bool = False) -> SandboxPlan:
    """Decide every order, CIP and state change (no I/O)."""
    master = random.Random(seed)
    end = start + timedelta(days=days - 1)
    holiday_days, extra_days = _holidays_in_span(start, end)
    calendar = Calendar(start, end, extra_days)
    ctx = Context(
        start=start, end=end, days=_span(start, end), calendar=calendar,
        fx=plan_fx(random.Random(master.getrandbits(64)), calendar, start, end),
        cips=Serials(random.Random(master.getrandbits(64)), 10_000_000 + _ri(master, 0, 999_999), 23),
        operations=Serials(random.Random(master.getrandbits(64)), 300_000_000 + _ri(master, 0, 999_999), 9),
        holiday_days=holiday_days,
    )
    specs = store_specs(stores)
    if mapped_store:
        sid, name, fmt, limit, prefix = MAPPED_SPEC
        specs.append(StoreSpec(len(specs), sid, name, fmt, "reference", limit, prefix))
    latin1_store = next((s for s in specs if s.name_column), None)  # a canonical store with names
    latin1_day = _pick(ctx.days, 0.3)
    plans = [
        StorePlanner(ctx, spec, random.Random(master.getrandbits(64)),
                     latin1_day if spec is latin1_store else None).plan(orders_per_day)
        for spec in specs
    ]
    return SandboxPlan(ctx, specs, plans, extra_days, latin1_store, latin1_day, broken_rows, master.getrandbits(64),
                       plan_notifications(ctx, plans))


def write_sandbox(home: pathlib.Path, plan: SandboxPlan) -> tuple[list[pathlib.Path], int]:
    """Write every file of ``plan``; returns (files, deliberately broken rows)."""
    ctx, specs, days = plan.ctx, plan.specs, plan.ctx.days
    w, rng, quarantined = Writer(home), random.Random(plan.write_seed), 0
    write_config(w, specs, plan.extra_days)
    write_fx(w, ctx.fx)
    canonical = [s for s in specs if s.order_format == "canonical"]
    # file-level variants: BOM, CRLF and Latin-1 order files; a BOM+CRLF statement
    order_variants: dict[str, dict[date, str]] = defaultdict(dict)
    if canonical:
        order_variants[canonical[0].id][_pick(days, 0.15)] = "bom"
        order_variants[canonical[0].id][_pick(days, 0.2)] = "crlf"
    if plan.latin1_store:
        order_variants[plan.latin1_store.id][plan.latin1_day] = "cp1252"
    statement_variants = {specs[-1].id: {_pick(days, 0.25): "bom_crlf"}}
    broken_canonical = canonical[0] if plan.broken_rows and canonical else None
    broken_shopify = next((s for s in specs if s.shopify), None) if plan.broken_rows else None
    for store_plan in plan.stores:
        s = store_plan.store
        if s.shopify:
            quarantined += write_shopify_orders(
                w, store_plan, ctx, _pick(days, 0.5) if s is broken_shopify else None)
        elif s.mapped:
            quarantined += write_prestashop_orders(
                w, store_plan, ctx, _pick(days, 0.35), _pick(days, 0.6) if plan.broken_rows else None)
        else:
            quarantined += write_canonical_orders(
                w, store_plan, ctx, order_variants.get(s.id, {}), _pick(days, 0.4) if s is broken_canonical else None)
        write_statements(w, store_plan, ctx, statement_variants.get(s.id, {}))
    if plan.broken_rows:
        quarantined += write_broken_statement(w, specs[min(1, len(specs) - 1)], _pick(days, 0.3), ctx)
    # JSON: notifications for two stores, a /v1/cips/search reply for the first store
    for notified in plan.notified:
        write_notifications(w, notified, rng)
    write_cips_search(w, plan.stores[0], ctx.end, rng)
    return sorted(w.files), quarantined


def _generate(home: pathlib.Path, stores: int, days: int, start: date, seed: int, orders_per_day: int,
              broken_rows: bool, mapped_store: bool = False) -> GeneratedSandbox:
    plan = plan_sandbox(stores=stores, days=days, start=start, seed=seed, orders_per_day=orders_per_day,
                        broken_rows=broken_rows, mapped_store=mapped_store)
    items = plan.intended()
    expected = {status: 0 for status in STATUSES}
    expected.update(Counter(i.status for i in items))
    reasons = dict(sorted(Counter(i.reason for i in items if i.reason).items()))
    files, quarantined = write_sandbox(home, plan)
    expected["QUARANTINED"] = quarantined
    alerts = {"NOTIFICATION_MISMATCH": sum(n.lost is not None for n in plan.notified)}
    return GeneratedSandbox(home=home, store_ids=[s.id for s in plan.specs], start=plan.ctx.start,
                            end=plan.ctx.end, files=files, expected=expected, expected_reasons=reasons,
                            expected_alerts=alerts)
