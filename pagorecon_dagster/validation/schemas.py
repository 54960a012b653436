"""What a clean row is, per input kind (docs/landing-formats.md). Rows arrive as stripped strings in
a polars frame; every check here names the column and the rule, and the ingest code turns
failures into quarantine entries. Nothing outside this module decides whether a row is valid.

The checks are polars expressions (pandera's polars backend), judged a whole column at a time.
A column whose rule is "parses as X" (timestamps, dates) is parsed once, before validation, by
`parse_columns`: its check judges that parsed value and the typed row reuses it."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import pandera.polars as pa

from pagorecon_dagster.core.lima import timestamps_as
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


def _present(c: pl.Expr) -> pl.Expr:
    return c.fill_null("") != ""


def _check(rule: Callable[[pl.Expr], pl.Expr], *, name: str, error: str, **statistics) -> pa.Check:
    """A check whose `rule` maps the column (an expression) to one boolean per row."""
    return pa.Check(lambda data, **_: data.lazyframe.select(rule(pl.col(data.key))), name=name, error=error, **statistics)


def _frame_check(rule: Callable[[], pl.Expr], *, name: str, error: str) -> pa.Check:
    """A check over several columns: `rule()` is one boolean per row."""
    return pa.Check(lambda data: data.lazyframe.select(rule()), name=name, error=error)


def required() -> pa.Check:
    return _check(_present, name="required", error=RULE_REQUIRED)


def no_nul() -> pa.Check:
    # A NUL is never data: it breaks text tools and spreadsheets downstream.
    return _check(lambda c: ~c.fill_null("").str.contains("\x00", literal=True), name="no_nul", error=RULE_NO_NUL)


def via_pandas(function) -> Callable[[pl.Series], pl.Series]:
    """A pandas column function (core.money's export forms) applied to a polars column."""
    return lambda s: pl.Series(s.name, function(s.to_pandas(use_pyarrow_extension_array=True)).to_numpy(na_value=None), dtype=pl.String)


def money(optional: bool = False, plain=None) -> list[pa.Check]:
    """`plain` (a pandas column function) turns an export's own way of writing amounts into the
    plain form first (mapped orders)."""
    def ok(c: pl.Expr) -> pl.Expr:
        text = c if plain is None else c.map_batches(via_pandas(plain), return_dtype=pl.String)
        valid = text.fill_null("").str.contains(MONEY_PATTERN)
        return valid | ~_present(c) if optional else valid

    # One check: its message (core.money.describe_money_problem) also says when it is empty.
    return [_check(ok, name="money", error=RULE_MONEY)]


# --- rules judged on a parsed value (parsed once: parse_columns) ---------------------------------

PARSED_PREFIX = "_parsed_"


def parsed(column: str) -> str:
    """The name of `column`'s parsed value in a frame that went through parse_columns."""
    return PARSED_PREFIX + column


def _parsed_check(parse: Callable[[pl.Series], pl.Series], *, name: str, error: str) -> pa.Check:
    """Empty, or a value that `parse` understands (it gives null for what it does not)."""
    def ok(data, parse):
        return data.lazyframe.select(pl.col(parsed(data.key)).is_not_null() | ~_present(pl.col(data.key)))

    return pa.Check(ok, name=name, error=error, parse=parse)


def parse_columns(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with the parsed value of each column the schema judges parsed, as `parsed(column)`."""
    values = [
        check.statistics["parse"](frame[name]).alias(parsed(name))
        for name, column in schema.columns.items() if name in frame.columns
        for check in column.checks if "parse" in (check.statistics or {})
    ]
    return frame.with_columns(values) if values else frame


def timestamp(optional: bool = True, fmt: str | None = None) -> list[pa.Check]:
    rule = RULE_TIMESTAMP if fmt is None else f"must be a date in the form {fmt} (columns.date_format), in the years 1900-2199"
    checks = [_parsed_check(lambda s: timestamps_as(s, fmt), name="timestamp", error=rule)]
    return checks if optional else [required(), *checks]


def iso_date(values: pl.Series) -> pl.Series:
    """`YYYY-MM-DD` -> Date; anything else null."""
    return values.str.strptime(pl.Date, "%Y-%m-%d", strict=False)


def one_of(allowed, *, case_insensitive: bool = True, error: str | None = None) -> pa.Check:
    allowed_set = sorted({a.lower() for a in allowed} if case_insensitive else set(allowed))
    shown = ", ".join(sorted(dict.fromkeys(allowed)))

    def ok(c: pl.Expr) -> pl.Expr:
        v = c.fill_null("").str.to_lowercase() if case_insensitive else c.fill_null("")
        return v.is_in(allowed_set) | ~_present(c)

    return _check(ok, name="one_of", error=error or f"must be one of: {shown}")


def _col(*checks, **kwargs) -> pa.Column:
    flat = [c for item in checks for c in (item if isinstance(item, list) else [item])]
    # No dtype check: every column arrives as text; the checks judge the text.
    return pa.Column(checks=[no_nul(), *flat], nullable=True, required=kwargs.pop("required", True), **kwargs)


def _opt() -> pa.Column:
    return pa.Column(checks=[no_nul()], nullable=True, required=False)


def statement_status(c: pl.Expr) -> pl.Expr:
    """The status code a statement's `status` stands for (STATEMENT_STATUSES), null when none."""
    return c.fill_null("").str.to_lowercase().replace_strict(STATEMENT_STATUSES, default=None, return_dtype=pl.String)


def _paid_needs_payment_date() -> pl.Expr:
    return (statement_status(pl.col("status")) != "paid").fill_null(True) | _present(pl.col("date_payment"))


def _cip(c: pl.Expr) -> pl.Expr:
    return c.fill_null("").str.contains(r"^[0-9A-Za-z-]{1,40}$") | ~_present(c)


STATEMENT_SCHEMA = pa.DataFrameSchema(
    {
        "cip": _col(required(), _check(_cip, name="cip", error="must be the CIP code (digits)")),
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
    checks=[_frame_check(_paid_needs_payment_date, name="paid_has_date", error="date_payment is required when status is paid")],
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
    checks=[pa.Check(lambda data: data.lazyframe.select(
                _present(pl.col("financial_status"))
                | (_present(pl.col("cancelled_at")) if "cancelled_at" in data.lazyframe.collect_schema().names() else pl.lit(False))),
                name="status_known", error="financial_status is required unless cancelled_at is set")],
    name="shopify order",
)

_RATE = r"^[0-9]{1,4}(\.[0-9]{1,6})?$"


def _rate(c: pl.Expr) -> pl.Expr:
    # Positive: some digit is not zero (no float needed to say so).
    return c.fill_null("").str.contains(_RATE) & c.fill_null("").str.contains("[1-9]")


FX_SCHEMA = pa.DataFrameSchema(
    {
        "date": _col(required(), _parsed_check(iso_date, name="date", error=RULE_DATE)),
        "currency": _col(required(), _check(lambda c: c.fill_null("").str.contains(r"^[A-Za-z]{3}$"), name="currency", error="must be a 3-letter currency code")),
        "buy": _col(required(), _check(_rate, name="rate", error=RULE_RATE)),
        "sell": _col(required(), _check(_rate, name="rate", error=RULE_RATE)),
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
        symbol = via_pandas(lambda s: amount_symbol(s, columns.currency_symbols))

        def currency_known() -> pl.Expr:
            given = _present(pl.col(currency)) if currency else pl.lit(False)
            return given | pl.col(total).map_batches(symbol, return_dtype=pl.String).is_not_null()

        frame_checks.append(_frame_check(currency_known, name="currency_known", error=(
            "currency: unknown; map a `currency` column, list the amount's symbol in `currency_symbols` or set "
            "`default_currency` in pagorecon.yaml")))
    return pa.DataFrameSchema({name: _col(*checks) for name, checks in by_column.items()}, checks=frame_checks,
                              name="mapped order")


def required_columns(schema: pa.DataFrameSchema) -> list[str]:
    return [name for name, col in schema.columns.items() if col.required]
