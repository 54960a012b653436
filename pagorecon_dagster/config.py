"""`PAGORECON_HOME` and `pagorecon.yaml`: where state lives and the policy knobs (README.md, Configuration).

`pagorecon.yaml` is validated by one model, `PagoreconConfig`: every section refuses unknown keys,
every value has its type and bounds here, and every refusal is one `ConfigError` naming the key
path, e.g. ``pagorecon.yaml: `alerts.refund_rate_pct` must be a number between 0 and 100, got 150``."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pagorecon_dagster.core.money import MoneyError, format_cents, parse_cents
from pagorecon_dagster.ingestion.readers import normalize_header
from pagorecon_dagster.validation.schemas import CANONICAL_ORDER_STATUSES, CURRENCIES

CONFIG_FILE = "pagorecon.yaml"
DEFAULT_HOME = Path.home() / ".pagorecon"
STORE_ID_RE = re.compile(r"^[a-z0-9_]{1,32}$")
ORDER_FORMATS = ("shopify", "canonical", "mapped")
# Where a store's orders come from: files dropped into landing/, or pulled from the shop's API into
# landing/ (stores/shopify.py in the Shopify export's columns, stores/woocommerce.py as canonical CSV).
ORDER_SOURCES = ("files", "shopify_api", "woocommerce_api")
SHOP_DOMAIN_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,61}\.myshopify\.com$")
# Which WooCommerce orders are PagoEfectivo's: any of these in `payment_method` or `payment_method_title`.
WOOCOMMERCE_PAGOEFECTIVO_MATCH = ("pagoefectivo", "pago efectivo")
# https://host[:port][/path]; plain http only to this machine (a sandbox, a tunnel).
BASE_URL_RE = re.compile(r"^(https://[^/\s?#]+|http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?)(/[^\s?#]*)?$")
REPORT_LANGUAGES = ("en", "es")
# How reports reach finance (delivery/): an SMTP server (STARTTLS always), or .eml files in
# $PAGORECON_HOME/mailbox/ for a trial; and per recipient, the report files attached or linked.
EMAIL_DELIVERIES = ("smtp", "file")
EMAIL_FILES = ("attach", "link")
EMAIL_RE = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
# How approved refunds are paid out (refunds/payout.py): the provider's API or a bank-transfer file.
REFUND_EXECUTORS = ("api", "payout_file")
# Fields a store may have sent to PagoEfectivo as `transactionCode`, per export format.
REFERENCE_FIELDS = {
    "canonical": ("order_id", "cip"),
    "shopify": ("name", "id", "payment_reference"),
    # `mapped`: a field of the store's `columns` block (docs/landing-formats.md, Any other export).
    "mapped": ("reference", "order_id"),
}

# The audit chain's head is anchored outside the warehouse; lines are keyed with this secret when set.
AUDIT_KEY_ENV = "PAGORECON_AUDIT_KEY"
AUDIT_ANCHOR_FILE = "audit-anchor.log"
# An operating-system account name (what `pwd` knows), as listed in `approvers`.
OS_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$")


class ConfigError(ValueError):
    """A `pagorecon.yaml` that cannot be used; the message names the key and the problem."""


class Problem(ValueError):
    """A value the model refuses; `path` continues the key path below where the validator runs."""

    def __init__(self, message: str, *path: str | int):
        super().__init__(message)
        self.path = path


# -- value types: each states its type, bounds and the words of its refusal once ---------------------

def _number(value: Any) -> Decimal:
    try:
        number = None if isinstance(value, bool) else Decimal(str(value))
    except InvalidOperation:
        number = None
    if number is None or number.is_nan():
        raise Problem(f"must be a number, got {value!r}")
    return number


def _percent(value: Any) -> Decimal:
    number = _number(value)
    if not number.is_finite() or not 0 <= number <= 100:
        raise Problem(f"must be a number between 0 and 100, got {value!r}")
    return number


def whole_number(low: int = 0, high: int | None = None, note: str = "") -> Any:
    """An int in [low, high] (no upper bound when high is None); YAML's true/false are not numbers."""
    bounds = f"{low}-{high}" if high is not None else f">= {low}"

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            raise Problem(f"must be a whole number {bounds}{note}, got {value!r}")
        return value

    return Annotated[int, BeforeValidator(check)]


def one_of(choices: tuple[str, ...], *, optional: bool = False) -> Any:
    """A Literal of `choices`, refused with the choices listed; when optional, blank or absent is None."""

    def check(given: Any) -> str | None:
        value = (given.strip() or None) if optional and isinstance(given, str) else given
        if value is None and optional:
            return None
        if value not in choices:
            raise Problem(f"must be one of {', '.join(choices)}, got {given!r}")
        return value

    literal = Literal[choices]  # type: ignore[valid-type]
    return Annotated[literal | None if optional else literal, BeforeValidator(check)]


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Problem(f"must be true or false, got {value!r}")
    return value


Flag = Annotated[bool, BeforeValidator(_flag)]


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise Problem(f"must be an ISO date YYYY-MM-DD, got {value!r}") from None


def _cents(value: Any) -> int:
    try:
        return parse_cents("" if value is None else str(value))
    except MoneyError as exc:
        raise Problem(str(exc)) from None


def _cents_or_none(value: Any) -> int | None:
    return None if value is None else _cents(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Problem(f"must be a non-empty string, got {value!r}")
    return value.strip()


def _matching(pattern: re.Pattern[str], what: str, *, optional: bool = False) -> Any:
    """A string matching `pattern`; when optional, blank or absent is None."""

    def check(value: Any) -> str | None:
        if optional and (value is None or (isinstance(value, str) and not value.strip())):
            return None
        if not isinstance(value, str) or not pattern.match(value):
            raise Problem(f"must {what}, got {value!r}")
        return value

    return Annotated[str | None if optional else str, BeforeValidator(check)]


Percent = Annotated[Decimal, BeforeValidator(_percent)]
IsoDate = Annotated[dt.date, BeforeValidator(_date)]
# PEN written as a decimal string ("150.00"), held as integer céntimos, written back the same way.
Cents = Annotated[int, BeforeValidator(_cents), PlainSerializer(lambda c: format_cents(c), return_type=str)]
OptionalCents = Annotated[
    int | None, BeforeValidator(_cents_or_none), PlainSerializer(lambda c: None if c is None else format_cents(c))
]
WholeNumber = whole_number()
StoreId = _matching(STORE_ID_RE, "match [a-z0-9_]{1,32}")
OsUser = _matching(OS_USER_RE, "be an operating-system account name (letters, digits, _ . -)")
OrderFormat = one_of(ORDER_FORMATS)
OrderSource = one_of(ORDER_SOURCES)
ShopDomain = _matching(SHOP_DOMAIN_RE, "be the shop's myshopify.com domain like lima-shop.myshopify.com")
BaseUrl = _matching(BASE_URL_RE, "be the shop's https:// address like https://shop.example.pe (http:// only for 127.0.0.1 or localhost)")
ReportLanguage = one_of(REPORT_LANGUAGES)
RefundExecutor = one_of(REFUND_EXECUTORS, optional=True)
Hour = whole_number(0, 23, " (Lima time)")
Minute = whole_number(0, 59, " (minute of the hour)")
Port = whole_number(1, 65535)
EmailAddress = _matching(EMAIL_RE, "be an email address like finanzas@example.pe")
OptionalEmailAddress = _matching(EMAIL_RE, "be an email address like finanzas@example.pe", optional=True)
EmailDelivery = one_of(EMAIL_DELIVERIES)
EmailFiles = one_of(EMAIL_FILES)
LookbackDays = whole_number(0, 366)
LagDays = whole_number(0, 30)


def _no_duplicates(items: tuple[Any, ...], key: str) -> None:
    seen: set[Any] = set()
    for index, item in enumerate(items):
        value = getattr(item, key)
        if value in seen:
            raise Problem(f"{value!r} is listed twice", index, key)
        seen.add(value)


# -- the sections ------------------------------------------------------------------------------------

class Section(BaseModel):
    """A mapping of `pagorecon.yaml`: only its own keys, frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # A section may be left empty (`alerts:`) and takes every default; a list entry may not.
    may_be_empty: ClassVar[bool] = True
    not_a_mapping: ClassVar[str] = ""   # the refusal of a value that is not a mapping; default: the keys
    unknown_keys: ClassVar[str] = "has unknown key(s)"

    @classmethod
    def allowed_keys(cls) -> list[str]:
        return [field.alias or name for name, field in cls.model_fields.items()]

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        allowed = cls.allowed_keys()
        if data is None and cls.may_be_empty:
            return {}
        if not isinstance(data, dict):
            raise Problem(cls.not_a_mapping or f"must be a mapping with keys {', '.join(allowed)}")
        unknown = sorted(set(map(str, data)) - set(allowed))
        if unknown:
            raise Problem(f"{cls.unknown_keys} {', '.join(unknown)}; allowed: {', '.join(allowed)}")
        return data


class ValueMap(Section):
    """An export column whose values are translated one by one (`columns.status`, `columns.payment_method`)."""

    may_be_empty: ClassVar[bool] = False
    example: ClassVar[str] = ""

    column: str
    map: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise Problem(f"must be a mapping like {{column: Status, map: {cls.example}}}")
        return data

    @field_validator("column", mode="before")
    @classmethod
    def _column(cls, value: Any) -> str:
        return _text(value)

    @field_validator("map", mode="before")
    @classmethod
    def _map(cls, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or not value:
            raise Problem(f"must map at least one export value, like {cls.example}")
        mapped: dict[str, Any] = {}
        for given, target in value.items():
            key = str(given).strip()
            if not key:
                raise Problem("has an empty export value; list the values exactly as the export writes them")
            if key.lower() in {k.lower() for k in mapped}:
                raise Problem("is listed twice (export values are matched ignoring case)", key)
            mapped[key] = cls.target(target, key)
        return mapped

    @classmethod
    def target(cls, value: Any, key: str) -> Any:
        raise NotImplementedError

    def lookup(self) -> dict[str, Any]:
        """Export value, trimmed and case-folded -> its target (how rows are matched against the map)."""
        return {key.lower(): target for key, target in self.map.items()}


class StatusMap(ValueMap):
    example: ClassVar[str] = "{Pago aceptado: paid, Cancelado: cancelled}"

    @classmethod
    def target(cls, value: Any, key: str) -> str:
        if value not in CANONICAL_ORDER_STATUSES:
            raise Problem(f"must be one of {', '.join(CANONICAL_ORDER_STATUSES)}, got {value!r}", key)
        return value


class PaymentMethodMap(ValueMap):
    example: ClassVar[str] = "{PagoEfectivo: true, Transferencia bancaria: false}"

    @classmethod
    def target(cls, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise Problem(f"must be true (PagoEfectivo) or false (another method), got {value!r}", key)
        return value


def _column_name(value: Any) -> str | None:
    return None if value is None else _text(value)


ColumnName = Annotated[str, BeforeValidator(_text)]
OptionalColumnName = Annotated[str | None, BeforeValidator(_column_name)]
Currency = one_of(CURRENCIES)


class ColumnsConfig(Section):
    """`order_format: mapped`: which column of the store's own export holds each canonical field."""

    may_be_empty: ClassVar[bool] = False
    unknown_keys: ClassVar[str] = "has unknown canonical field(s)"

    order_id: ColumnName
    reference: ColumnName            # what the store sent to PagoEfectivo as transactionCode
    created_at: ColumnName
    status: StatusMap
    currency: OptionalColumnName = None   # may be left out when default_currency or currency_symbols say it
    total: ColumnName
    payment_method: PaymentMethodMap
    discount: OptionalColumnName = None
    customer_email: OptionalColumnName = None
    customer_document: OptionalColumnName = None
    date_format: str | None = None   # strptime, e.g. "%d/%m/%Y %H:%M"; default ISO-8601
    decimal_separator: one_of((".", ",")) = "."
    default_currency: one_of(CURRENCIES, optional=True) = None
    currency_symbols: dict[str, Currency] = {}   # e.g. {"S/": PEN, "US$": USD}: stripped from amounts

    @field_validator("date_format", mode="before")
    @classmethod
    def _date_format(cls, value: Any) -> str | None:
        if value is None:
            return None
        sample = dt.datetime(2026, 7, 14, 19, 30, 5)
        try:
            fmt = _text(value)
            ok = "%" in fmt and dt.datetime.strptime(sample.strftime(fmt), fmt).date() == sample.date()
        except (Problem, ValueError):
            ok = False
        if not ok:
            raise Problem(f"must be a strptime format that names the date, like \"%d/%m/%Y %H:%M:%S\", got {value!r}")
        return fmt

    @field_validator("currency_symbols", mode="before")
    @classmethod
    def _symbols(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict) or any(not str(k).strip() or any(c.isdigit() for c in str(k)) for k in value):
            raise Problem('must be a mapping of currency symbols (no digits) to PEN or USD, like {"S/": PEN, "US$": USD}')
        return {str(k).strip(): v for k, v in value.items()}

    def header(self, field: str) -> str | None:
        """The export column of `field`, as ingestion names a header (`Grand Total (Purchased)` ->
        `grand_total_(purchased)`); None when the field is not mapped."""
        value = getattr(self, field)
        column = value.column if isinstance(value, ValueMap) else value
        return None if column is None else normalize_header(column)

    @model_validator(mode="after")
    def _currency_known(self) -> "ColumnsConfig":
        if self.currency is None and self.default_currency is None and not self.currency_symbols:
            raise Problem("is required unless `default_currency` or `currency_symbols` gives the currency", "currency")
        return self


class StoreConfig(Section):
    may_be_empty: ClassVar[bool] = False

    id: StoreId
    name: str = Field(None, validate_default=True)   # default: the id
    order_format: OrderFormat
    # The order field sent to PagoEfectivo as `transactionCode`; default `name` (shopify), `order_id` (canonical).
    reference_field: str = Field(None, validate_default=True)
    auto_refund_limit_cents: Cents = Field(0, alias="auto_refund_limit")   # refunds above it wait for a person
    source: OrderSource = "files"
    shop_domain: ShopDomain | None = None   # source shopify_api: the shop's myshopify.com domain
    base_url: BaseUrl | None = None   # woocommerce_api: the shop's address, without /wp-json
    # woocommerce_api: an order is PagoEfectivo's when its method or method title contains any of these (any case).
    pagoefectivo_match: tuple[str, ...] = WOOCOMMERCE_PAGOEFECTIVO_MATCH

    @model_validator(mode="before")
    @classmethod
    def _api_orders_are_canonical(cls, data: Any) -> Any:
        # An API store lands pagorecon's canonical CSV, so its order format goes without saying.
        if isinstance(data, dict) and data.get("source") == "woocommerce_api" and "order_format" not in data:
            return {**data, "order_format": "canonical"}
        return data
    columns: ColumnsConfig | None = None   # `order_format: mapped` only: the export's column of each field

    @model_validator(mode="after")
    def _columns_for_mapped(self) -> "StoreConfig":
        if self.order_format == "mapped" and self.columns is None:
            raise Problem("is required when order_format is mapped: name the export's column of each field", "columns")
        if self.order_format != "mapped" and self.columns is not None:
            raise Problem(f"is only for order_format mapped (this store's is {self.order_format})", "columns")
        return self

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any, info: ValidationInfo) -> str:
        return _text(info.data.get("id") if value is None else value)

    @field_validator("pagoefectivo_match", mode="before")
    @classmethod
    def _match_words(cls, value: Any) -> Any:
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise Problem(f"must be a non-empty list of words like [pagoefectivo], got {value!r}")
        return tuple(v.strip().lower() for v in value)

    @model_validator(mode="after")
    def _source_fields(self) -> "StoreConfig":
        if self.source == "woocommerce_api":
            if self.order_format != "canonical":
                raise Problem("must be canonical (or left out) for a woocommerce_api store: the pull lands canonical CSV",
                              "order_format")
            if self.base_url is None:
                raise Problem("is required for a woocommerce_api store, like https://shop.example.pe", "base_url")
        else:
            # Compared with the defaults, not with the keys given: a written-back config lists every key.
            for key, default in (("base_url", None), ("pagoefectivo_match", WOOCOMMERCE_PAGOEFECTIVO_MATCH)):
                if getattr(self, key) != default:
                    raise Problem(f"is only for a store with `source: woocommerce_api` (this one has {self.source})", key)
        return self

    @field_validator("reference_field", mode="before")
    @classmethod
    def _reference_field(cls, value: Any, info: ValidationInfo) -> Any:
        fmt = info.data.get("order_format")
        if fmt not in REFERENCE_FIELDS:
            return value   # the order format is refused already
        if value is None:
            return REFERENCE_FIELDS[fmt][0]
        normalised = str(value).strip().lower().replace(" ", "_")
        if normalised not in REFERENCE_FIELDS[fmt]:
            raise Problem(f"must be one of {', '.join(REFERENCE_FIELDS[fmt])} for {fmt} orders, got {value!r}")
        return normalised

    @model_validator(mode="after")
    def _shopify_api(self) -> "StoreConfig":
        if self.source == "shopify_api":
            if self.shop_domain is None:
                raise Problem("is required when `source` is shopify_api (like lima-shop.myshopify.com)", "shop_domain")
            if self.order_format != "shopify":
                raise Problem(f"must be shopify when `source` is shopify_api (pulls land as Shopify exports), "
                              f"got {self.order_format!r}", "order_format")
        elif self.shop_domain is not None:
            raise Problem("is only read when `source` is shopify_api; remove it or set `source: shopify_api`", "shop_domain")
        return self


class Approver(Section):
    """A person who may decide refunds, known by the operating-system account they run pagorecon as."""

    may_be_empty: ClassVar[bool] = False

    user: OsUser
    name: str = Field(None, validate_default=True)   # default: the user
    approval_limit_cents: OptionalCents = Field(None, alias="approval_limit")   # PEN per approval; None: no limit

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any, info: ValidationInfo) -> str:
        return _text(info.data.get("user") if value is None else value)


class AlertsConfig(Section):
    """Thresholds of the alert rules (`dbt_like_sql/alerts/*.sql` read them as variables)."""

    refund_rate_pct: Percent = Decimal("5.0")
    unreconciled_pct: Percent = Decimal("10")
    statement_cutoff_business_days: WholeNumber = 1
    refund_overdue_business_days: WholeNumber = 3
    # FX_RATE_MISSING: a business day's SBS rate from the BCRP is due by this Lima hour of that day.
    fx_rate_due_hour: Hour = 20


class ScheduleConfig(Section):
    hour: Hour = 6                   # Lima hour of the daily run
    lookback_days: LookbackDays = 3  # days before yesterday re-run for late statements and orders
    hourly: Flag = False             # the hourly sync: pull today's CIPs, API orders and rates, reconcile today
    hourly_minute: Minute = 15       # minute of every Lima hour the hourly sync starts at


class RatesConfig(Section):
    bcrp: Flag = False               # the hourly sync fetches the SBS rates from the BCRP statistics API
    lookback_days: LookbackDays = 7  # days before today fetched again (late publications)


class RefundsConfig(Section):
    # None: $PAGORECON_REFUND_EXECUTOR decides, else `api` when the provider's URL is set (refunds/payout.py).
    executor: RefundExecutor = None


# How long each class of data is kept (retention.py): a whole number of years or days.
PERIOD_RE = re.compile(r"^(\d+)\s*(years?|y|days?|d)$", re.IGNORECASE)
PERIOD_UNITS = {"y": "years", "d": "days"}
MAX_PERIOD_DAYS = 100 * 366
LANDING_ACTIONS = ("archive", "delete")


@dataclass(frozen=True)
class Period:
    """A retention period: `5 years` or `730 days`; data dated before `cutoff(today)` is past it."""

    count: int
    unit: str   # years | days

    def cutoff(self, today: dt.date) -> dt.date:
        """The first day still kept: `today` less the period (29 February less whole years: the 28th)."""
        if self.unit == "days":
            return today - dt.timedelta(days=self.count)
        try:
            return today.replace(year=today.year - self.count)
        except ValueError:
            return today.replace(year=today.year - self.count, day=28)

    def __str__(self) -> str:
        return f"{self.count} {self.unit if self.count != 1 else self.unit[:-1]}"


def _period(value: Any) -> Period:
    if isinstance(value, Period):
        return value
    found = PERIOD_RE.match(value.strip()) if isinstance(value, str) else None
    if found:
        count, unit = int(found[1]), PERIOD_UNITS[found[2][0].lower()]
        if 1 <= count * (366 if unit == "years" else 1) <= MAX_PERIOD_DAYS:
            return Period(count, unit)
    raise Problem(f"must be a period like \"5 years\" or \"730 days\" (1 day to 100 years), got {value!r}")


RetentionPeriod = Annotated[Period, BeforeValidator(_period), PlainSerializer(str, return_type=str)]
LandingAction = one_of(LANDING_ACTIONS)
MonthDay = whole_number(1, 28)


class RetentionScheduleConfig(Section):
    day: MonthDay = 1    # day of the month of the monthly retention run
    hour: Hour = 3       # Lima hour of it

    @property
    def cron(self) -> str:
        return f"0 {self.hour} {self.day} * *"


class RetentionConfig(Section):
    """How long each class of data is kept (docs/operations.md, Retention). Tax records: 5 years."""

    landing_files: RetentionPeriod = Period(5, "years")
    landing_action: LandingAction = "archive"   # past it, a landing file moves to archive/landing/ or is deleted
    raw_rows: RetentionPeriod = Period(5, "years")
    reconciliation_results: RetentionPeriod = Period(5, "years")
    refunds: RetentionPeriod = Period(5, "years")
    audit_log: RetentionPeriod = Period(5, "years")
    quarantine: RetentionPeriod = Period(2, "years")
    webhook_bodies: RetentionPeriod = Period(2, "years")
    schedule: RetentionScheduleConfig = RetentionScheduleConfig()
class HealthConfig(Section):
    """How many Peru business days a store may fall behind before it is degraded (orchestration/health.py)."""

    statement_lag_business_days: LagDays = 1   # business days before today the statements need not cover yet
    reconcile_lag_business_days: LagDays = 1   # business days before today not yet reconciled
class EmailServer(Section):
    """The SMTP server; credentials come from $PAGORECON_SMTP_USERNAME and $PAGORECON_SMTP_PASSWORD."""

    host: str = ""
    port: Port = 587
    # A PEM file of the CA that signed the server's certificate (a private CA); empty: the system's.
    ca_file: str = ""

    @field_validator("host", "ca_file", mode="before")
    @classmethod
    def _optional_text(cls, value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise Problem(f"must be a string, got {value!r}")
        return value.strip()


class EmailRecipient(Section):
    may_be_empty: ClassVar[bool] = False

    address: EmailAddress
    language: one_of(REPORT_LANGUAGES, optional=True) = None   # None: `report_language`
    stores: Literal["all"] | tuple[StoreId, ...] = "all"
    files: EmailFiles = "attach"

    @field_validator("stores", mode="before")
    @classmethod
    def _stores(cls, value: Any) -> Any:
        if value == "all":
            return value
        if not isinstance(value, list) or not value:
            raise Problem("must be `all` or a non-empty list of store ids")
        return value


class EmailConfig(Section):
    """Who gets the all-stores report of each day and the month closes, and through which server."""

    delivery: EmailDelivery = "smtp"
    server: EmailServer = EmailServer()
    from_address: OptionalEmailAddress = None
    # Where `files: link` recipients fetch the archived files: this URL + the path under archive/reports/.
    link_base_url: str = ""
    recipients: tuple[EmailRecipient, ...] = ()

    @field_validator("recipients", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            raise Problem("must be a list of entries like {address: finanzas@example.pe, language: es, stores: all, files: attach}")
        return value

    @field_validator("recipients")
    @classmethod
    def _unique_recipients(cls, recipients: tuple[EmailRecipient, ...]) -> tuple[EmailRecipient, ...]:
        _no_duplicates(recipients, "address")
        return recipients

    @model_validator(mode="after")
    def _complete(self) -> "EmailConfig":
        if not self.recipients:
            return self
        if self.delivery == "smtp" and not self.server.host:
            raise Problem("is required to send by smtp (or set `delivery: file`)", "server", "host")
        if self.from_address is None and self.delivery == "smtp":
            raise Problem("is required to send by smtp", "from_address")
        if any(r.files == "link" for r in self.recipients) and not self.link_base_url.strip():
            raise Problem("is required when a recipient has `files: link`", "link_base_url")
        return self


LAKE_CATALOGS = ("local", "postgres")
LakeCatalog = one_of(LAKE_CATALOGS)
Weekday = whole_number(0, 6, " (0 = Sunday)")
SnapshotDays = whole_number(1, 3650)


class MaintainScheduleConfig(Section):
    day: Weekday = 0   # day of the week of the weekly `maintain` run (0 = Sunday)
    hour: Hour = 4     # Lima hour of it

    @property
    def cron(self) -> str:
        return f"0 {self.hour} * * {self.day}"


class WarehouseConfig(Section):
    """Where the warehouse, a DuckLake, keeps its catalog and its Parquet files
    (docs/operations.md, The warehouse). The embedded default needs no server."""

    catalog: LakeCatalog = "local"   # local: a SQLite file under the home; postgres: a PostgreSQL database
    # The catalog database when `catalog: postgres`, as a libpq string ("host=db dbname=pagorecon_lake
    # user=pagorecon"); the password never goes here: PGPASSWORD or ~/.pgpass, as for any libpq client.
    postgres: str = ""
    # The Parquet files: empty = <home>/warehouse/data/; a folder every worker mounts, or s3://bucket/prefix/
    # (credentials from $PAGORECON_S3_KEY_ID and $PAGORECON_S3_SECRET, or the AWS credential chain).
    data_path: str = ""
    snapshot_retention_days: SnapshotDays = 30   # `maintain` expires snapshots older than this
    maintain: MaintainScheduleConfig = MaintainScheduleConfig()

    @field_validator("postgres", "data_path", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise Problem(f"must be a string, got {value!r}")
        return value.strip()

    @model_validator(mode="after")
    def _complete(self) -> "WarehouseConfig":
        if self.catalog == "postgres" and not self.postgres:
            raise Problem('is required with `catalog: postgres`, like "host=db dbname=pagorecon_lake user=pagorecon"', "postgres")
        if "password" in self.postgres.lower():
            raise Problem("must not hold a password: set PGPASSWORD or ~/.pgpass", "postgres")
        return self


class PagoreconConfig(Section):
    """The whole of `pagorecon.yaml`."""

    may_be_empty: ClassVar[bool] = False
    not_a_mapping: ClassVar[str] = "must be a mapping with at least `stores`"
    unknown_keys: ClassVar[str] = "unknown key(s)"

    stores: tuple[StoreConfig, ...]
    start_date: IsoDate = dt.date(2024, 1, 1)
    fx_tolerance_pct: Percent = Decimal("1.0")
    missing_payment_grace_business_days: WholeNumber = 2
    extra_non_working_days: tuple[IsoDate, ...] = ()
    alerts: AlertsConfig = AlertsConfig()
    report_language: ReportLanguage = "en"
    refunds: RefundsConfig = RefundsConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    rates: RatesConfig = RatesConfig()
    approvers: tuple[Approver, ...] = ()
    retention: RetentionConfig = RetentionConfig()
    health: HealthConfig = HealthConfig()
    email: EmailConfig = EmailConfig()
    warehouse: WarehouseConfig = WarehouseConfig()

    @field_validator("stores", mode="before")
    @classmethod
    def _some_stores(cls, value: Any) -> Any:
        if not isinstance(value, list) or not value:
            raise Problem("must be a non-empty list of stores")
        return value

    @field_validator("extra_non_working_days", mode="before")
    @classmethod
    def _list_of_days(cls, value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            raise Problem("must be a list of ISO dates")
        return value

    @field_validator("approvers", mode="before")
    @classmethod
    def _roster(cls, value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            raise Problem('must be a list of entries like {user: maria, name: María Quispe, approval_limit: "2000.00"}')
        return value

    @field_validator("stores")
    @classmethod
    def _unique_stores(cls, stores: tuple[StoreConfig, ...]) -> tuple[StoreConfig, ...]:
        _no_duplicates(stores, "id")
        return stores

    @field_validator("approvers")
    @classmethod
    def _unique_approvers(cls, approvers: tuple[Approver, ...]) -> tuple[Approver, ...]:
        _no_duplicates(approvers, "user")
        return approvers

    @model_validator(mode="after")
    def _email_stores_known(self) -> "PagoreconConfig":
        known = {s.id for s in self.stores}
        for index, recipient in enumerate(self.email.recipients):
            unknown = [s for s in recipient.stores if s not in known] if recipient.stores != "all" else []
            if unknown:
                raise Problem(f"names store(s) not in `stores`: {', '.join(unknown)}", "email", "recipients", index, "stores")
        return self

    @field_validator("extra_non_working_days")
    @classmethod
    def _sorted_days(cls, days: tuple[dt.date, ...]) -> tuple[dt.date, ...]:
        return tuple(sorted(days))


def key_path(loc: tuple[str | int, ...]) -> str:
    """`('stores', 0, 'id')` -> `stores[0].id`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _refusal(error: dict[str, Any], where: str) -> str:
    loc, problem = tuple(error["loc"]), error.get("ctx", {}).get("error")
    if isinstance(problem, Problem):
        loc, text = loc + problem.path, str(problem)
    elif error["type"] == "missing":
        text = "is required"
    else:   # a check of pydantic's own; every value above is checked by a validator first
        text = f"{error['msg'][:1].lower()}{error['msg'][1:]}, got {error.get('input')!r}"
    key = key_path(loc)
    return f"{where}: `{key}` {text}" if key else f"{where}: {text}"


def parse_config(data: Any, *, source: str = CONFIG_FILE) -> PagoreconConfig:
    """The parsed YAML as the model; the first problem found is raised as a `ConfigError`."""
    try:
        return PagoreconConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_refusal(exc.errors()[0], source)) from None


# -- what the code reads -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    home: Path
    stores: tuple[StoreConfig, ...]
    start_date: dt.date
    fx_tolerance_pct: Decimal
    missing_payment_grace_business_days: int
    extra_non_working_days: tuple[dt.date, ...]
    report_language: str
    approvers: tuple[Approver, ...]
    alerts: AlertsConfig
    schedule: ScheduleConfig
    refunds: RefundsConfig
    rates: RatesConfig
    retention: RetentionConfig
    health: HealthConfig
    email: EmailConfig
    warehouse: WarehouseConfig

    @classmethod
    def from_config(cls, config: PagoreconConfig, home: Path) -> "Settings":
        return cls(home=home, **{name: getattr(config, name) for name in PagoreconConfig.model_fields})

    @property
    def refund_rate_pct(self) -> Decimal:
        return self.alerts.refund_rate_pct

    @property
    def landing(self) -> Path:
        return self.home / "landing"

    @property
    def lake(self) -> "Lake":
        """Where the warehouse is: the catalog and the data path (warehouse/lake.py)."""
        from pagorecon_dagster.warehouse.lake import Lake

        return Lake.from_config(self.warehouse, self.home, os.environ)

    @property
    def legacy_warehouse_path(self) -> Path:
        """The single DuckDB file earlier versions kept the warehouse in (`pagorecon migrate` moves it)."""
        return Path(self.lake.legacy_file)

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def archive(self) -> Path:
        return self.home / "archive"

    @property
    def mailbox(self) -> Path:
        """Where `email.delivery: file` writes each message as an .eml file."""
        return self.home / "mailbox"

    @property
    def audit_anchor_path(self) -> Path:
        return audit_anchor_path(self.home)

    def approver(self, user: str) -> Approver | None:
        return next((a for a in self.approvers if a.user == user), None)

    @property
    def store_ids(self) -> list[str]:
        return [s.id for s in self.stores]

    def store(self, store_id: str) -> StoreConfig:
        for s in self.stores:
            if s.id == store_id:
                return s
        raise KeyError(store_id)


def home_dir() -> Path:
    """`PAGORECON_HOME`, or `~/.pagorecon` when unset."""
    value = os.environ.get("PAGORECON_HOME", "").strip()
    return Path(value).expanduser().resolve() if value else DEFAULT_HOME


def audit_anchor_path(home: Path) -> Path:
    """The append-only file that anchors the audit chain's head, outside the warehouse."""
    return Path(home) / "archive" / AUDIT_ANCHOR_FILE


def audit_key() -> bytes | None:
    """`PAGORECON_AUDIT_KEY`: keys the audit anchor and the audited personal columns; None when unset."""
    value = os.environ.get(AUDIT_KEY_ENV, "")
    return value.encode("utf-8") if value else None


def load_settings(home: Path | None = None) -> Settings:
    home = Path(home) if home is not None else home_dir()
    path = home / CONFIG_FILE
    if not path.exists():
        raise ConfigError(f"{path}: not found. Create it (see README 'Configuration') or run `pagorecon demo`.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_settings(data, home=home, source=str(path))


def parse_settings(data: Any, *, home: Path, source: str = CONFIG_FILE) -> Settings:
    return Settings.from_config(parse_config(data, source=source), home)
