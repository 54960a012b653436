"""What a clean row is, per input kind (docs/landing-formats.md). Rows arrive as stripped strings; every
check here names the column and the rule, and the ingest code turns failures into quarantine
entries. Nothing outside this module decides whether a row is valid."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa

from pagorecon_dagster.core.lima import parse_timestamps_as
from pagorecon_dagster.core.money import MONEY_PATTERN, amount_symbol, plain_amounts

STATEMENT_STATUSES = {
    "paid": "paid", "23": "paid", "593": "paid",
    "pending": "pending", "22": "pending",
    "expired": "expired", "21": "expired", "595": "expired",
    "deleted": "deleted", "25": "deleted",
    "reversed": "reversed", "592": "reversed",
}
CURRENCIES = ("PEN", "USD")
CANONICAL_ORDER_STATUSES = ("pending", "paid", "cancelled", "refunded")
SHOPIFY_FINANCIAL_STATUSES = {
    "paid": "paid", "partially_refunded": "refunded", "refunded": "refunded",
    "pending": "pending", "authorized": "pending", "partially_paid": "pending",
    "voided": "cancelled",
}

RULE_REQUIRED = "is required"
RULE_MONEY = "must be a plain decimal like 1234.50 (no separators, at most 2 decimals, not negative)"
RULE_TIMESTAMP = "must be an ISO-8601 timestamp like 2026-07-14T19:30:00-05:00, in the years 1900-2199"
RULE_DATE = "must be an ISO date YYYY-MM-DD"
RULE_RATE = "must be a positive decimal rate like 3.745"
RULE_NO_NUL = "contains a NUL byte (\\x00); remove it and drop the file again"


def _present(s: pd.Series) -> pd.Series:
    return s.fillna("") != ""


def required() -> pa.Check:
    return pa.Check(_present, name="required", error=RULE_REQUIRED)


def no_nul() -> pa.Check:
    # A NUL is never data: it breaks text tools and spreadsheets downstream.
    return pa.Check(lambda s: ~s.fillna("").str.contains("\x00", regex=False), name="no_nul", error=RULE_NO_NUL)


def money(optional: bool = False, plain=lambda s: s) -> list[pa.Check]:
    """`plain` turns an export's own way of writing amounts into the plain form first (mapped orders)."""
    ok = lambda s: plain(s).fillna("").str.fullmatch(MONEY_PATTERN) | (optional & ~_present(s))  # noqa: E731
    # One check: its message (core.money.describe_money_problem) also says when it is empty.
    return [pa.Check(ok, name="money", error=RULE_MONEY)]


def timestamp(optional: bool = True, fmt: str | None = None) -> list[pa.Check]:
    def ok(s: pd.Series) -> pd.Series:
        parsed = parse_timestamps_as(s, fmt)
        return parsed.notna() | ~_present(s)

    rule = RULE_TIMESTAMP if fmt is None else f"must be a date in the form {fmt} (columns.date_format), in the years 1900-2199"
    checks = [pa.Check(ok, name="timestamp", error=rule)]
    return checks if optional else [required(), *checks]


def one_of(allowed, *, case_insensitive: bool = True, error: str | None = None) -> pa.Check:
    allowed_set = {a.lower() for a in allowed} if case_insensitive else set(allowed)
    shown = ", ".join(sorted(dict.fromkeys(allowed)))

    def ok(s: pd.Series) -> pd.Series:
        v = s.fillna("").str.lower() if case_insensitive else s.fillna("")
        return v.isin(allowed_set) | ~_present(s)

    return pa.Check(ok, name="one_of", error=error or f"must be one of: {shown}")


def _col(*checks, **kwargs) -> pa.Column:
    flat = [c for item in checks for c in (item if isinstance(item, list) else [item])]
    # No dtype check: every column arrives as (arrow-backed) text; the checks judge the text.
    return pa.Column(checks=[no_nul(), *flat], nullable=True, required=kwargs.pop("required", True), **kwargs)


def _opt() -> pa.Column:
    return pa.Column(checks=[no_nul()], nullable=True, required=False)


def _paid_needs_payment_date(df: pd.DataFrame) -> pd.Series:
    status = df["status"].fillna("").str.lower().map(STATEMENT_STATUSES)
    return (status != "paid") | _present(df["date_payment"])


STATEMENT_SCHEMA = pa.DataFrameSchema(
    {
        "cip": _col(required(), pa.Check(lambda s: s.fillna("").str.fullmatch(r"[0-9A-Za-z-]{1,40}") | ~_present(s), name="cip", error="must be the CIP code (digits)")),
        # May be empty: a paid CIP without a reference is loaded as an orphan, never hidden (docs/landing-formats.md, Statements).
        "transaction_code": _col(),
        "operation_number": _opt(),
        "status": _col(required(), one_of(STATEMENT_STATUSES)),
        "currency": _col(required(), one_of(CURRENCIES)),
        "amount": _col(money()),
        "commission": _col(money(optional=True), required=False),
        "igv": _col(money(optional=True), required=False),
        "date_creation": _col(timestamp(), required=False),
        "date_expiry": _col(timestamp(), required=False),
        "date_payment": _col(timestamp(), required=False),
        "channel": _opt(),
        "user_document_type": _opt(),
        "user_document_number": _opt(),
        "user_email": _opt(),
    },
    checks=[pa.Check(_paid_needs_payment_date, name="paid_has_date", error="date_payment is required when status is paid")],
    name="statement",
)

CANONICAL_ORDER_SCHEMA = pa.DataFrameSchema(
    {
        "order_id": _col(required()),
        "created_at": _col(timestamp(optional=False)),
        "status": _col(required(), one_of(CANONICAL_ORDER_STATUSES)),
        "currency": _col(required(), one_of(CURRENCIES)),
        "total": _col(money()),
        "discount": _col(money()),
        "payment_method": _opt(),
        "cip": _opt(),
        "customer_email": _opt(),
        "customer_document": _opt(),
    },
    name="canonical order",
)

# Shopify: validated on each order's first row; line-item rows carry no order-level columns.
SHOPIFY_ORDER_SCHEMA = pa.DataFrameSchema(
    {
        "name": _col(required()),
        "id": _col(required()),
        "financial_status": _col(one_of(SHOPIFY_FINANCIAL_STATUSES)),
        "currency": _col(required(), one_of(CURRENCIES)),
        "total": _col(money()),
        "discount_amount": _col(money(optional=True)),
        "refunded_amount": _col(money(optional=True), required=False),
        "created_at": _col(timestamp(optional=False)),
        "cancelled_at": _col(timestamp(), required=False),
        "payment_method": _opt(),
        "payment_reference": _opt(),
        "email": _opt(),
    },
    checks=[pa.Check(lambda df: _present(df["financial_status"]) | _present(df.get("cancelled_at", df["financial_status"])),
                     name="status_known", error="financial_status is required unless cancelled_at is set")],
    name="shopify order",
)

FX_SCHEMA = pa.DataFrameSchema(
    {
        "date": _col(required(), pa.Check(lambda s: pd.to_datetime(s, format="%Y-%m-%d", errors="coerce").notna(), name="date", error=RULE_DATE)),
        "currency": _col(required(), pa.Check(lambda s: s.fillna("").str.fullmatch(r"[A-Za-z]{3}"), name="currency", error="must be a 3-letter currency code")),
        "buy": _col(required(), pa.Check(lambda s: s.fillna("").str.fullmatch(r"\d{1,4}(\.\d{1,6})?") & (pd.to_numeric(s, errors="coerce") > 0), name="rate", error=RULE_RATE)),
        "sell": _col(required(), pa.Check(lambda s: s.fillna("").str.fullmatch(r"\d{1,4}(\.\d{1,6})?") & (pd.to_numeric(s, errors="coerce") > 0), name="rate", error=RULE_RATE)),
    },
    name="exchange rate",
)

REFUND_REQUEST_SCHEMA = pa.DataFrameSchema(
    {
        "refund_id": _col(required()),
        "order_id": _col(required()),
        "cip": _col(required()),
        "amount": _col(money()),
        "currency": _col(required(), one_of(CURRENCIES)),
        "reason": _col(required()),
        "requested_at": _col(timestamp(optional=False)),
        "requested_by": _col(required()),
        "beneficiary_document": _col(required()),
        "beneficiary_account": _opt(),
    },
    name="refund request",
)


def mapped_order_schema(columns) -> pa.DataFrameSchema:
    """`order_format: mapped`: the canonical order rules, applied to the export's own columns as
    the store's `columns` block (config.ColumnsConfig) names and translates them."""
    plain = lambda s: plain_amounts(s, columns.decimal_separator, columns.currency_symbols)  # noqa: E731
    not_mapped = "is not in `columns.{}.map` of pagorecon.yaml; add it there, then drop the file again"
    rules: dict[str, list] = {
        "order_id": [required()],
        "reference": [required()],
        "created_at": timestamp(optional=False, fmt=columns.date_format),
        "status": [required(), one_of(columns.status.map, error=not_mapped.format("status"))],
        "currency": [one_of(CURRENCIES)],
        "total": money(plain=plain),
        "payment_method": [required(), one_of(columns.payment_method.map, error=not_mapped.format("payment_method"))],
        "discount": money(optional=True, plain=plain),
        "customer_email": [],
        "customer_document": [],
    }
    by_column: dict[str, list] = {}
    for field, checks in rules.items():
        column = columns.header(field)
        if column is not None:  # one export column may serve two fields (Magento's `ID`)
            by_column.setdefault(column, []).extend(checks)
    frame_checks = []
    if columns.default_currency is None:
        currency, total = columns.header("currency"), columns.header("total")

        def currency_known(df: pd.DataFrame) -> pd.Series:
            given = _present(df[currency]) if currency else pd.Series(False, index=df.index)
            return given | amount_symbol(df[total], columns.currency_symbols).notna()

        frame_checks.append(pa.Check(currency_known, name="currency_known", error=(
            "currency: unknown; map a `currency` column, list the amount's symbol in `currency_symbols` or set "
            "`default_currency` in pagorecon.yaml")))
    return pa.DataFrameSchema({name: _col(*checks) for name, checks in by_column.items()}, checks=frame_checks,
                              name="mapped order")


def required_columns(schema: pa.DataFrameSchema) -> list[str]:
    return [name for name, col in schema.columns.items() if col.required]
