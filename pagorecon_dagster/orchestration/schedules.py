"""The daily schedule: yesterday for every store, plus the few days before it for late data, as
one run over the store x date rectangle."""

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import dagster as dg

from pagorecon_dagster.config import ConfigError, Settings
from pagorecon_dagster.core.lima import LIMA_TZ
from pagorecon_dagster.jobs import MAIN_JOB
from pagorecon_dagster.partitions import range_tags

TRIGGER_TAG = "pagorecon/trigger"


@dataclass(frozen=True)
class SchedulePolicy:
    hour: int = 6            # Lima hour of the daily run
    lookback_days: int = 3   # days before yesterday re-run for late statements and orders

    @classmethod
    def from_settings(cls, settings: Settings) -> "SchedulePolicy":
        raw = settings.raw.get("schedule") or {}
        if not isinstance(raw, dict):
            raise ConfigError("pagorecon.yaml: `schedule` must be a mapping, e.g. {hour: 6, lookback_days: 3}")
        hour = raw.get("hour", cls.hour)
        lookback = raw.get("lookback_days", cls.lookback_days)
        if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
            raise ConfigError(f"pagorecon.yaml: `schedule.hour` must be a whole number 0-23 (Lima time), got {hour!r}")
        if isinstance(lookback, bool) or not isinstance(lookback, int) or not 0 <= lookback <= 366:
            raise ConfigError(f"pagorecon.yaml: `schedule.lookback_days` must be a whole number 0-366, got {lookback!r}")
        return cls(hour, lookback)


def daily_window(settings: Settings, policy: SchedulePolicy, run_day: dt.date) -> tuple[dt.date, dt.date] | None:
    """Yesterday and the `lookback_days` before it, clipped to start_date; None before start_date."""
    end = run_day - dt.timedelta(days=1)
    start = max(end - dt.timedelta(days=policy.lookback_days), settings.start_date)
    return (start, end) if end >= settings.start_date else None


def daily_schedule(settings: Settings) -> dg.ScheduleDefinition:
    policy = SchedulePolicy.from_settings(settings)

    @dg.schedule(
        name="daily_reconcile",
        cron_schedule=f"0 {policy.hour} * * *",
        execution_timezone=LIMA_TZ,
        job_name=MAIN_JOB,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Every day at {policy.hour:02d}:00 Lima: yesterday and the {policy.lookback_days} days before it, every store, one run.",
    )
    def daily_reconcile(context: dg.ScheduleEvaluationContext):
        run_day = context.scheduled_execution_time.astimezone(ZoneInfo(LIMA_TZ)).date()
        window = daily_window(settings, policy, run_day)
        if window is None:
            return dg.SkipReason(f"{run_day}: yesterday is before start_date {settings.start_date}")
        start, end = window
        return dg.RunRequest(
            run_key=f"daily:{run_day.isoformat()}",
            tags={**range_tags(settings.store_ids, start, end), TRIGGER_TAG: "daily_reconcile"},
        )

    return daily_reconcile
