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

CONFIG_FILE = "pagorecon.yaml"
DEFAULT_HOME = Path.home() / ".pagorecon"
STORE_ID_RE = re.compile(r"^[a-z0-9_]{1,32}$")
ORDER_FORMATS = ("shopify", "canonical")
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
ReportLanguage = one_of(REPORT_LANGUAGES)
RefundExecutor = one_of(REFUND_EXECUTORS, optional=True)
Hour = whole_number(0, 23, " (Lima time)")
Port = whole_number(1, 65535)
EmailAddress = _matching(EMAIL_RE, "be an email address like finanzas@example.pe")
OptionalEmailAddress = _matching(EMAIL_RE, "be an email address like finanzas@example.pe", optional=True)
EmailDelivery = one_of(EMAIL_DELIVERIES)
EmailFiles = one_of(EMAIL_FILES)
LookbackDays = whole_number(0, 366)


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


class StoreConfig(Section):
    may_be_empty: ClassVar[bool] = False

    id: StoreId
    name: str = Field(None, validate_default=True)   # default: the id
    order_format: OrderFormat
    # The order field sent to PagoEfectivo as `transactionCode`; default `name` (shopify), `order_id` (canonical).
    reference_field: str = Field(None, validate_default=True)
    auto_refund_limit_cents: Cents = Field(0, alias="auto_refund_limit")   # refunds above it wait for a person

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any, info: ValidationInfo) -> str:
        return _text(info.data.get("id") if value is None else value)

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


class ScheduleConfig(Section):
    hour: Hour = 6                   # Lima hour of the daily run
    lookback_days: LookbackDays = 3  # days before yesterday re-run for late statements and orders


class RefundsConfig(Section):
    # None: $PAGORECON_REFUND_EXECUTOR decides, else `api` when the provider's URL is set (refunds/payout.py).
    executor: RefundExecutor = None


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
    approvers: tuple[Approver, ...] = ()
    email: EmailConfig = EmailConfig()

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
    email: EmailConfig

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
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

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
