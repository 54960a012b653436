"""Alert thresholds from `pagorecon.yaml` (`alerts:`), each checked with the key named on error."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from pagorecon_dagster.config import ConfigError, Settings


@dataclass(frozen=True)
class AlertPolicy:
    refund_rate_pct: Decimal = Decimal("5.0")
    unreconciled_pct: Decimal = Decimal("10")
    statement_cutoff_business_days: int = 1
    refund_overdue_business_days: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> "AlertPolicy":
        raw = settings.raw.get("alerts") or {}
        return cls(
            refund_rate_pct=settings.refund_rate_pct,
            unreconciled_pct=_percent(raw, "unreconciled_pct", cls.unreconciled_pct),
            statement_cutoff_business_days=_whole(raw, "statement_cutoff_business_days", cls.statement_cutoff_business_days),
            refund_overdue_business_days=_whole(raw, "refund_overdue_business_days", cls.refund_overdue_business_days),
        )

    def variables(self) -> dict[str, object]:
        return {
            "refund_rate_pct": self.refund_rate_pct,
            "unreconciled_pct": self.unreconciled_pct,
            "statement_cutoff_business_days": self.statement_cutoff_business_days,
            "refund_overdue_business_days": self.refund_overdue_business_days,
        }


def _percent(raw: dict, key: str, default: Decimal) -> Decimal:
    value = raw.get(key, default)
    try:
        number = Decimal(str(value)) if not isinstance(value, bool) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or not 0 <= number <= 100:
        raise ConfigError(f"pagorecon.yaml: `alerts.{key}` must be a number between 0 and 100, got {value!r}")
    return number


def _whole(raw: dict, key: str, default: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"pagorecon.yaml: `alerts.{key}` must be a whole number >= 0, got {value!r}")
    return value
