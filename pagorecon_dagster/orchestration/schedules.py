"""The daily schedule: yesterday for every store, plus the few days before it for late data, as
one run over the store x date rectangle."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.lima import LIMA_TZ
from pagorecon_dagster.jobs import MAIN_JOB
from pagorecon_dagster.partitions import range_tags

TRIGGER_TAG = "pagorecon/trigger"


def daily_window(settings: Settings, run_day: dt.date) -> tuple[dt.date, dt.date] | None:
    """Yesterday and the `schedule.lookback_days` before it, clipped to start_date; None before start_date."""
    end = run_day - dt.timedelta(days=1)
    start = max(end - dt.timedelta(days=settings.schedule.lookback_days), settings.start_date)
    return (start, end) if end >= settings.start_date else None


def daily_schedule(settings: Settings) -> dg.ScheduleDefinition:
    config = settings.schedule

    @dg.schedule(
        name="daily_reconcile",
        cron_schedule=f"0 {config.hour} * * *",
        execution_timezone=LIMA_TZ,
        job_name=MAIN_JOB,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Every day at {config.hour:02d}:00 Lima: yesterday and the {config.lookback_days} days before it, every store, one run.",
    )
    def daily_reconcile(context: dg.ScheduleEvaluationContext):
        run_day = context.scheduled_execution_time.astimezone(ZoneInfo(LIMA_TZ)).date()
        window = daily_window(settings, run_day)
        if window is None:
            return dg.SkipReason(f"{run_day}: yesterday is before start_date {settings.start_date}")
        start, end = window
        return dg.RunRequest(
            run_key=f"daily:{run_day.isoformat()}",
            tags={**range_tags(settings.store_ids, start, end), TRIGGER_TAG: "daily_reconcile"},
        )

    return daily_reconcile
