"""The input kinds of docs/landing-formats.md: where their files live, which schema judges a row, and how a
clean row becomes a typed warehouse row (céntimos, UTC instants, Lima dates).

Rows arrive as the polars frames the schema judged: text columns, plus the value of each column
the schema parsed (`schemas.parsed`), which is used here rather than parsed again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pandera.polars as pa
import polars as pl

from pagorecon_dagster.config import StoreConfig
from pagorecon_dagster.core.lima import lima_date
from pagorecon_dagster.core.money import amount_symbol, cents, plain_amounts
from pagorecon_dagster.validation import schemas
from pagorecon_dagster.validation.schemas import parsed

PAGOEFECTIVO_RE = r"pago\s*efectivo"


def reference(values: pl.Expr) -> pl.Expr:
    """docs/landing-formats.md, Orders: trim, drop a leading `#`, upper-case."""
    return values.fill_null("").str.strip_chars().str.replace(r"^#\s*", "").str.to_uppercase()


def normalize_reference(values: pd.Series) -> pd.Series:
    """`reference` for a pandas column."""
    text = pl.Series("v", values.astype("string").to_numpy(na_value=None), dtype=pl.String)
    out = pl.DataFrame([text]).select(reference(pl.col("v")))["v"]
    return pd.Series(out.to_list(), index=values.index, dtype="string")


def _blank_to_none(c: pl.Expr) -> pl.Expr:
    return pl.when(c.fill_null("") != "").then(c)


def _col(df: pl.DataFrame, name: str) -> pl.Expr:
    return pl.col(name) if name in df.columns else pl.lit("", dtype=pl.String)


@dataclass(frozen=True)
class Source:
    kind: str            # folder under landing/ and `ingested_files.source`
    table: str           # raw, versioned rows
    per_store: bool      # landing/<kind>/<store_id>/...
    schema: Callable[[StoreConfig | None], pa.DataFrameSchema]
    to_rows: Callable[[pl.DataFrame, StoreConfig | None], pl.DataFrame]


def statement_rows(df: pl.DataFrame, store: StoreConfig | None) -> pl.DataFrame:
    date_payment, date_creation = pl.col(parsed("date_payment")), pl.col(parsed("date_creation"))
    origin = _col(df, "_origin")
    return df.select(
        cip=pl.col("cip"),
        transaction_code=_blank_to_none(pl.col("transaction_code")),
        # NULL, not '', when there is none: CIPs without a reference share nothing with each other.
        reference=_blank_to_none(reference(pl.col("transaction_code"))),
        operation_number=_blank_to_none(_col(df, "operation_number")),
        status=schemas.statement_status(pl.col("status")),
        currency=pl.col("currency").str.to_uppercase(),
        amount_cents=cents(pl.col("amount")),
        commission_cents=cents(_col(df, "commission")),
        igv_cents=cents(_col(df, "igv")),
        date_creation=_timestamp(df, "date_creation"),
        date_expiry=_timestamp(df, "date_expiry"),
        date_payment=_timestamp(df, "date_payment"),
        payment_date=lima_date(_timestamp(df, "date_payment")),
        creation_date=lima_date(_timestamp(df, "date_creation")),
        channel=_blank_to_none(_col(df, "channel")),
        user_document_type=_blank_to_none(_col(df, "user_document_type")),
        user_document_number=_blank_to_none(_col(df, "user_document_number")),
        user_email=_blank_to_none(_col(df, "user_email")),
        origin=pl.when(origin.fill_null("") != "").then(origin).otherwise(pl.lit("csv")),
    )


def _timestamp(df: pl.DataFrame, name: str) -> pl.Expr:
    """The instant the schema parsed from column `name` (null when the file has no such column)."""
    return pl.col(parsed(name)) if parsed(name) in df.columns else pl.lit(None, dtype=pl.Datetime("us", "UTC"))


def _order_frame(df: pl.DataFrame, *, order_id, source_order_id, created_at, status, store_status, currency,
                 total, discount, method, cip, email, document, line_items, is_pagoefectivo=None) -> pl.DataFrame:
    if is_pagoefectivo is None:
        is_pagoefectivo = method.fill_null("").str.contains("(?i)" + PAGOEFECTIVO_RE)
    return df.select(
        order_id=order_id,
        reference=reference(order_id),
        source_order_id=_blank_to_none(source_order_id),
        created_at=created_at,
        business_date=lima_date(created_at),
        status=status,
        store_status=store_status,
        currency=currency.str.to_uppercase(),
        total_cents=cents(total),
        discount_cents=cents(discount),
        payment_method=_blank_to_none(method),
        is_pagoefectivo=is_pagoefectivo,
        cip=_blank_to_none(cip),
        customer_email=_blank_to_none(email),
        customer_document=_blank_to_none(document),
        line_items=line_items,
    )


def canonical_order_rows(df: pl.DataFrame, store: StoreConfig) -> pl.DataFrame:
    return _order_frame(
        df,
        order_id=pl.col(store.reference_field),
        source_order_id=pl.col("order_id"),
        created_at=pl.col(parsed("created_at")),
        status=pl.col("status").str.to_lowercase(),
        store_status=pl.col("status"),
        currency=pl.col("currency"),
        total=pl.col("total"),
        discount=pl.col("discount"),
        method=_col(df, "payment_method"),
        cip=_col(df, "cip"),
        email=_col(df, "customer_email"),
        document=_col(df, "customer_document"),
        line_items=pl.lit(1, dtype=pl.Int64),
    )


def shopify_order_rows(df: pl.DataFrame, store: StoreConfig) -> pl.DataFrame:
    financial = pl.col("financial_status").fill_null("").str.to_lowercase()
    cancelled = (_col(df, "cancelled_at").fill_null("") != "") | (financial == "voided")
    status = pl.when(cancelled).then(pl.lit("cancelled")).otherwise(
        financial.replace_strict(schemas.SHOPIFY_FINANCIAL_STATUSES, default=None, return_dtype=pl.String))
    return _order_frame(
        df,
        order_id=pl.col(store.reference_field),
        source_order_id=pl.col("id"),
        created_at=pl.col(parsed("created_at")),
        status=status,
        store_status=pl.col("financial_status"),
        currency=pl.col("currency"),
        total=pl.col("total"),
        discount=_col(df, "discount_amount"),
        method=_col(df, "payment_method"),
        cip=_col(df, "payment_reference"),
        email=_col(df, "email"),
        document=pl.lit("", dtype=pl.String),
        line_items=pl.col("_line_items").cast(pl.Int64),
    )


def mapped_order_rows(df: pl.DataFrame, store: StoreConfig) -> pl.DataFrame:
    """`order_format: mapped`: the export's columns, as the store's `columns` block names them,
    translated into canonical orders (its value maps decide status and PagoEfectivo)."""
    columns = store.columns

    def field(name: str) -> pl.Expr:
        header = columns.header(name)
        return pl.col(header) if header else pl.lit("", dtype=pl.String)

    def mapped(name: str, lookup: dict) -> pl.Expr:
        return field(name).fill_null("").str.to_lowercase().replace_strict(lookup, default=None)

    def plain(name: str) -> pl.Expr:
        return field(name).map_batches(schemas.via_pandas(
            lambda s: plain_amounts(s, columns.decimal_separator, columns.currency_symbols)), return_dtype=pl.String)

    symbol = field("total").map_batches(
        schemas.via_pandas(lambda s: amount_symbol(s, columns.currency_symbols)), return_dtype=pl.String)
    currency = pl.coalesce(_blank_to_none(field("currency")), symbol, pl.lit(columns.default_currency or ""))
    return _order_frame(
        df,
        order_id=field(store.reference_field),
        source_order_id=field("order_id"),
        created_at=pl.col(parsed(columns.header("created_at"))),
        status=mapped("status", columns.status.lookup()),
        store_status=field("status"),
        currency=currency,
        total=plain("total"),
        discount=plain("discount"),
        method=field("payment_method"),
        is_pagoefectivo=mapped("payment_method", columns.payment_method.lookup()).cast(pl.Boolean),
        cip=pl.lit("", dtype=pl.String),
        email=field("customer_email"),
        document=field("customer_document"),
        line_items=pl.lit(1, dtype=pl.Int64),
    )


ORDER_READERS = {
    "canonical": (lambda store: schemas.CANONICAL_ORDER_SCHEMA, canonical_order_rows),
    "shopify": (lambda store: schemas.SHOPIFY_ORDER_SCHEMA, shopify_order_rows),
    "mapped": (lambda store: schemas.mapped_order_schema(store.columns), mapped_order_rows),
}


def order_schema(store: StoreConfig) -> pa.DataFrameSchema:
    base = ORDER_READERS[store.order_format][0](store)
    if store.order_format == "mapped":  # built from the columns block, which requires the reference already
        return base
    ref = store.reference_field
    if ref in base.columns and base.columns[ref].required and any(c.name == "required" for c in base.columns[ref].checks):
        return base
    return base.update_columns({ref: {"checks": [schemas.required()], "required": True}}) if ref in base.columns else base.add_columns(
        {ref: pa.Column(checks=[schemas.required()], nullable=True)}
    )


def order_rows(df: pl.DataFrame, store: StoreConfig) -> pl.DataFrame:
    return ORDER_READERS[store.order_format][1](df, store)


def fx_rows(df: pl.DataFrame, store: StoreConfig | None) -> pl.DataFrame:
    return df.select(
        date=pl.col(parsed("date")),
        currency=pl.col("currency").str.to_uppercase(),
        buy=pl.col("buy"),
        sell=pl.col("sell"),
    )


def refund_request_rows(df: pl.DataFrame, store: StoreConfig | None) -> pl.DataFrame:
    return df.select(
        refund_id=pl.col("refund_id"),
        order_id=pl.col("order_id"),
        cip=pl.col("cip"),
        amount_cents=cents(pl.col("amount")),
        currency=pl.col("currency").str.to_uppercase(),
        reason=pl.col("reason"),
        requested_at=pl.col(parsed("requested_at")),
        requested_by=pl.col("requested_by"),
        beneficiary_document=pl.col("beneficiary_document"),
        beneficiary_account=_blank_to_none(_col(df, "beneficiary_account")),
    )


SOURCES: dict[str, Source] = {
    "statements": Source("statements", "statement_rows", True, lambda store: schemas.STATEMENT_SCHEMA, statement_rows),
    "orders": Source("orders", "order_rows", True, order_schema, order_rows),
    "refunds": Source("refunds", "refund_request_rows", True, lambda store: schemas.REFUND_REQUEST_SCHEMA, refund_request_rows),
    "fx": Source("fx", "fx_rate_rows", False, lambda store: schemas.FX_SCHEMA, fx_rows),
}

NOTIFICATION_EVENTS = {
    "cip.paid": "paid",
    "cip.expired": "expired",
    "cip.deleted": "deleted",
    "cip.reversed": "reversed",
    "cip.extorno": "reversed",
}

CIP_SEARCH_FIELDS = {
    "cip": "cip", "transactionCode": "transaction_code", "operationNumber": "operation_number",
    "currency": "currency", "amount": "amount", "commission": "commission", "igv": "igv",
    "dateCreation": "date_creation", "dateExpiry": "date_expiry", "datePayment": "date_payment",
    "channel": "channel", "userDocumentType": "user_document_type",
    "userDocumentNumber": "user_document_number", "userEmail": "user_email",
}
