"""`PAGORECON_HOME` and `pagorecon.yaml`: where state lives and the policy knobs (README.md, Configuration)."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from pagorecon_dagster.core.money import MoneyError, parse_cents

CONFIG_FILE = "pagorecon.yaml"
DEFAULT_HOME = Path.home() / ".pagorecon"
STORE_ID_RE = re.compile(r"^[a-z0-9_]{1,32}$")
ORDER_FORMATS = ("shopify", "canonical")
# Fields a store may have sent to PagoEfectivo as `transactionCode`, per export format.
REFERENCE_FIELDS = {
    "canonical": ("order_id", "cip"),
    "shopify": ("name", "id", "payment_reference"),
}


# Sections whose keys are read by their domain (alerts/policy.py, orchestration/schedules.py,
# refunds/payout.py), which check the values; here, a misspelt key is refused.
SECTION_KEYS = {
    "alerts": ("refund_rate_pct", "unreconciled_pct", "statement_cutoff_business_days", "refund_overdue_business_days"),
    "schedule": ("hour", "lookback_days"),
    "refunds": ("executor",),
}


# The audit chain's head is anchored outside the warehouse; lines are keyed with this secret when set.
AUDIT_KEY_ENV = "PAGORECON_AUDIT_KEY"
AUDIT_ANCHOR_FILE = "audit-anchor.log"
# An operating-system account name (what `pwd` knows), as listed in `approvers`.
OS_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$")


class ConfigError(ValueError):
    """A `pagorecon.yaml` that cannot be used; the message names the key and the problem."""


@dataclass(frozen=True)
class StoreConfig:
    id: str
    name: str
    order_format: str
    reference_field: str
    auto_refund_limit_cents: int


@dataclass(frozen=True)
class Approver:
    """A person who may decide refunds, known by the operating-system account they run pagorecon as."""

    user: str
    name: str
    approval_limit_cents: int | None = None  # PEN per approval; None: no limit


@dataclass(frozen=True)
class Settings:
    home: Path
    stores: tuple[StoreConfig, ...]
    start_date: dt.date = dt.date(2024, 1, 1)
    fx_tolerance_pct: Decimal = Decimal("1.0")
    missing_payment_grace_business_days: int = 2
    extra_non_working_days: tuple[dt.date, ...] = ()
    refund_rate_pct: Decimal = Decimal("5.0")
    report_language: str = "en"
    approvers: tuple[Approver, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

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


def _decimal(value: Any, key: str, where: str, *, minimum: Decimal = Decimal(0)) -> Decimal:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: `{key}` must be a number, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{where}: `{key}` must be a number, got {value!r}") from None
    if not number.is_finite() or number < minimum:
        raise ConfigError(f"{where}: `{key}` must be a number >= {minimum}, got {value!r}")
    return number


def _date(value: Any, key: str, where: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{where}: `{key}` must be an ISO date YYYY-MM-DD, got {value!r}") from None


def _parse_store(index: int, raw: Any, where: str) -> StoreConfig:
    key = f"stores[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: `{key}` must be a mapping with id, name, order_format, ...")
    known = {"id", "name", "order_format", "reference_field", "auto_refund_limit"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: `{key}` has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
    store_id = raw.get("id")
    if not isinstance(store_id, str) or not STORE_ID_RE.match(store_id):
        raise ConfigError(f"{where}: `{key}.id` must match [a-z0-9_]{{1,32}}, got {store_id!r}")
    fmt = raw.get("order_format")
    if fmt not in ORDER_FORMATS:
        raise ConfigError(f"{where}: `{key}.order_format` must be one of {', '.join(ORDER_FORMATS)}, got {fmt!r}")
    ref = raw.get("reference_field", "name" if fmt == "shopify" else "order_id")
    ref_norm = str(ref).strip().lower().replace(" ", "_")
    if ref_norm not in REFERENCE_FIELDS[fmt]:
        allowed = ", ".join(REFERENCE_FIELDS[fmt])
        raise ConfigError(f"{where}: `{key}.reference_field` must be one of {allowed} for {fmt} orders, got {ref!r}")
    limit_raw = raw.get("auto_refund_limit", "0.00")
    try:
        limit = parse_cents(str(limit_raw))
    except MoneyError as exc:
        raise ConfigError(f"{where}: `{key}.auto_refund_limit` {exc}") from None
    name = raw.get("name", store_id)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: `{key}.name` must be a non-empty string, got {name!r}")
    return StoreConfig(store_id, name.strip(), fmt, ref_norm, limit)


def _parse_approvers(raw: Any, where: str) -> tuple[Approver, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: `approvers` must be a list of entries like {{user: maria, name: María Quispe, approval_limit: \"2000.00\"}}")
    approvers: list[Approver] = []
    for index, entry in enumerate(raw):
        key = f"approvers[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: `{key}` must be a mapping with user, and optionally name and approval_limit")
        known = {"user", "name", "approval_limit"}
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ConfigError(f"{where}: `{key}` has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
        user = entry.get("user")
        if not isinstance(user, str) or not OS_USER_RE.match(user):
            raise ConfigError(f"{where}: `{key}.user` must be an operating-system account name (letters, digits, _ . -), got {user!r}")
        if any(a.user == user for a in approvers):
            raise ConfigError(f"{where}: `{key}.user` {user!r} is listed twice")
        name = entry.get("name", user)
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: `{key}.name` must be a non-empty string, got {name!r}")
        limit = entry.get("approval_limit")
        if limit is not None:
            try:
                limit = parse_cents(str(limit))
            except MoneyError as exc:
                raise ConfigError(f"{where}: `{key}.approval_limit` {exc}") from None
        approvers.append(Approver(user, name.strip(), limit))
    return tuple(approvers)


def parse_settings(data: Any, *, home: Path, source: str = CONFIG_FILE) -> Settings:
    where = source
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a mapping with at least `stores`")
    known = {
        "stores", "start_date", "fx_tolerance_pct", "missing_payment_grace_business_days",
        "extra_non_working_days", "alerts", "report_language", "refunds", "schedule", "approvers",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
    stores_raw = data.get("stores")
    if not isinstance(stores_raw, list) or not stores_raw:
        raise ConfigError(f"{where}: `stores` must be a non-empty list of stores")
    stores = tuple(_parse_store(i, s, where) for i, s in enumerate(stores_raw))
    seen: set[str] = set()
    for i, s in enumerate(stores):
        if s.id in seen:
            raise ConfigError(f"{where}: `stores[{i}].id` {s.id!r} is listed twice")
        seen.add(s.id)
    start = _date(data.get("start_date", "2024-01-01"), "start_date", where)
    tolerance = _decimal(data.get("fx_tolerance_pct", "1.0"), "fx_tolerance_pct", where)
    if tolerance > 100:
        raise ConfigError(f"{where}: `fx_tolerance_pct` must be between 0 and 100, got {data.get('fx_tolerance_pct')!r}")
    grace = data.get("missing_payment_grace_business_days", 2)
    if isinstance(grace, bool) or not isinstance(grace, int) or grace < 0:
        raise ConfigError(f"{where}: `missing_payment_grace_business_days` must be a whole number >= 0, got {grace!r}")
    extra = data.get("extra_non_working_days") or []
    if not isinstance(extra, list):
        raise ConfigError(f"{where}: `extra_non_working_days` must be a list of ISO dates")
    extra_days = tuple(sorted(_date(d, f"extra_non_working_days[{i}]", where) for i, d in enumerate(extra)))
    for section, allowed in SECTION_KEYS.items():
        value = data.get(section) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: `{section}` must be a mapping with keys {', '.join(allowed)}")
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise ConfigError(f"{where}: `{section}` has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    alerts = data.get("alerts") or {}
    refund_rate = _decimal(alerts.get("refund_rate_pct", "5.0"), "alerts.refund_rate_pct", where)
    language = data.get("report_language", "en")
    if language not in ("en", "es"):
        raise ConfigError(f"{where}: `report_language` must be en or es, got {language!r}")
    return Settings(
        home=home,
        stores=stores,
        start_date=start,
        fx_tolerance_pct=tolerance,
        missing_payment_grace_business_days=grace,
        extra_non_working_days=extra_days,
        refund_rate_pct=refund_rate,
        report_language=language,
        approvers=_parse_approvers(data.get("approvers"), where),
        raw=data,
    )
