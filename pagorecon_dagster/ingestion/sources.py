"""The input kinds of docs/landing-formats.md: where their files live, which schema judges a row, and how a
clean row becomes a typed warehouse row (céntimos, UTC instants, Lima dates)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa

from pagorecon_dagster.config import StoreConfig
from pagorecon_dagster.core.lima import TEXT, lima_dates, parse_timestamps, parse_timestamps_as
from pagorecon_dagster.core.money import amount_symbol, cents_series, plain_amounts
from pagorecon_dagster.validation import schemas

PAGOEFECTIVO_RE = r"pago\s*efectivo"


def normalize_reference(values: pd.Series) -> pd.Series:
    """docs/landing-formats.md, Orders: trim, drop a leading `#`, upper-case."""
    return values.fillna("").str.strip().str.replace(r"^#\s*", "", regex=True).str.upper()


def _blank_to_none(s: pd.Series) -> pd.Series:
    return s.where(s.fillna("") != "", None)


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df.columns else pd.Series("", index=df.index, dtype=TEXT)


@dataclass(frozen=True)
class Source:
    kind: str            # folder under landing/ and `ingested_files.source`
    table: str           # raw, versioned rows
    per_store: bool      # landing/<kind>/<store_id>/...
    schema: Callable[[StoreConfig | None], pa.DataFrameSchema]
    to_rows: Callable[[pd.DataFrame, StoreConfig | None], pd.DataFrame]


def statement_rows(df: pd.DataFrame, store: StoreConfig | None) -> pd.DataFrame:
    date_payment = parse_timestamps(_col(df, "date_payment"))
    date_creation = parse_timestamps(_col(df, "date_creation"))
    return pd.DataFrame(
        {
            "cip": df["cip"],
            "transaction_code": _blank_to_none(df["transaction_code"]),
            # NULL, not '', when there is none: CIPs without a reference share nothing with each other.
            "reference": _blank_to_none(normalize_reference(df["transaction_code"])),
            "operation_number": _blank_to_none(_col(df, "operation_number")),
            "status": df["status"].str.lower().map(schemas.STATEMENT_STATUSES),
            "currency": df["currency"].str.upper(),
            "amount_cents": cents_series(df["amount"]),
            "commission_cents": cents_series(_col(df, "commission")),
            "igv_cents": cents_series(_col(df, "igv")),
            "date_creation": date_creation,
            "date_expiry": parse_timestamps(_col(df, "date_expiry")),
            "date_payment": date_payment,
            "payment_date": lima_dates(date_payment),
            "creation_date": lima_dates(date_creation),
            "channel": _blank_to_none(_col(df, "channel")),
            "user_document_type": _blank_to_none(_col(df, "user_document_type")),
            "user_document_number": _blank_to_none(_col(df, "user_document_number")),
            "user_email": _blank_to_none(_col(df, "user_email")),
            "origin": _col(df, "_origin").where(_col(df, "_origin") != "", "csv"),
        }
    )


def _order_frame(df, store, *, order_id, source_order_id, created_at, status, store_status, currency,
                 total, discount, method, cip, email, document, line_items, is_pagoefectivo=None) -> pd.DataFrame:
    if is_pagoefectivo is None:
        is_pagoefectivo = method.fillna("").str.contains(PAGOEFECTIVO_RE, case=False, regex=True)
    return pd.DataFrame(
        {
            "order_id": order_id,
            "reference": normalize_reference(order_id),
            "source_order_id": _blank_to_none(source_order_id),
            "created_at": created_at,
            "business_date": lima_dates(created_at),
            "status": status,
            "store_status": store_status,
            "currency": currency.str.upper(),
            "total_cents": cents_series(total),
            "discount_cents": cents_series(discount),
            "payment_method": _blank_to_none(method),
            "is_pagoefectivo": is_pagoefectivo,
            "cip": _blank_to_none(cip),
            "customer_email": _blank_to_none(email),
            "customer_document": _blank_to_none(document),
            "line_items": line_items,
        }
    )


def canonical_order_rows(df: pd.DataFrame, store: StoreConfig) -> pd.DataFrame:
    return _order_frame(
        df, store,
        order_id=df[store.reference_field],
        source_order_id=df["order_id"],
        created_at=parse_timestamps(df["created_at"]),
        status=df["status"].str.lower(),
        store_status=df["status"],
        currency=df["currency"],
        total=df["total"],
        discount=df["discount"],
        method=_col(df, "payment_method"),
        cip=_col(df, "cip"),
        email=_col(df, "customer_email"),
        document=_col(df, "customer_document"),
        line_items=pd.Series(1, index=df.index, dtype="int64"),
    )


def shopify_order_rows(df: pd.DataFrame, store: StoreConfig) -> pd.DataFrame:
    financial = df["financial_status"].fillna("").str.lower()
    cancelled = (_col(df, "cancelled_at").fillna("") != "") | (financial == "voided")
    status = financial.map(schemas.SHOPIFY_FINANCIAL_STATUSES).where(~cancelled, "cancelled")
    return _order_frame(
        df, store,
        order_id=df[store.reference_field],
        source_order_id=df["id"],
        created_at=parse_timestamps(df["created_at"]),
        status=status,
        store_status=df["financial_status"],
        currency=df["currency"],
        total=df["total"],
        discount=_col(df, "discount_amount"),
        method=_col(df, "payment_method"),
        cip=_col(df, "payment_reference"),
        email=_col(df, "email"),
        document=pd.Series("", index=df.index, dtype=TEXT),
        line_items=df["_line_items"].astype("int64"),
    )


def mapped_order_rows(df: pd.DataFrame, store: StoreConfig) -> pd.DataFrame:
    """`order_format: mapped`: the export's columns, as the store's `columns` block names them,
    translated into canonical orders (its value maps decide status and PagoEfectivo)."""
    columns = store.columns

    def field(name: str) -> pd.Series:
        header = columns.header(name)
        return df[header] if header else pd.Series("", index=df.index, dtype=TEXT)

    def mapped(name: str, lookup: dict) -> pd.Series:
        return field(name).fillna("").str.lower().map(lookup)

    total = field("total")
    currency = _blank_to_none(field("currency")).fillna(amount_symbol(total, columns.currency_symbols))
    plain = lambda s: plain_amounts(s, columns.decimal_separator, columns.currency_symbols)  # noqa: E731
    return _order_frame(
        df, store,
        order_id=field(store.reference_field),
        source_order_id=field("order_id"),
        created_at=parse_timestamps_as(field("created_at"), columns.date_format),
        status=mapped("status", columns.status.lookup()),
        store_status=field("status"),
        currency=currency.fillna(columns.default_currency or "").astype(TEXT),
        total=plain(total),
        discount=plain(field("discount")),
        method=field("payment_method"),
        is_pagoefectivo=mapped("payment_method", columns.payment_method.lookup()).astype(bool),
        cip=pd.Series("", index=df.index, dtype=TEXT),
        email=field("customer_email"),
        document=field("customer_document"),
        line_items=pd.Series(1, index=df.index, dtype="int64"),
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


def order_rows(df: pd.DataFrame, store: StoreConfig) -> pd.DataFrame:
    return ORDER_READERS[store.order_format][1](df, store)


def fx_rows(df: pd.DataFrame, store: StoreConfig | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.to_datetime(df["date"], format="%Y-%m-%d").dt.date,
            "currency": df["currency"].str.upper(),
            "buy": df["buy"],
            "sell": df["sell"],
        }
    )


def refund_request_rows(df: pd.DataFrame, store: StoreConfig | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "refund_id": df["refund_id"],
            "order_id": df["order_id"],
            "cip": df["cip"],
            "amount_cents": cents_series(df["amount"]),
            "currency": df["currency"].str.upper(),
            "reason": df["reason"],
            "requested_at": parse_timestamps(df["requested_at"]),
            "requested_by": df["requested_by"],
            "beneficiary_document": df["beneficiary_document"],
            "beneficiary_account": _blank_to_none(_col(df, "beneficiary_account")),
        }
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

