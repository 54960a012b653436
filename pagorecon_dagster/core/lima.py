"""Lima time and Peru business days. Lima is UTC-5 all year (no daylight saving since 1994)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache

import holidays
import pandas as pd

LIMA_TZ = "America/Lima"
LIMA_OFFSET_MINUTES = -300

# ISO-8601 date, optional time, optional offset (`Z`, `-05:00`, `-0500`, Shopify's ` -0500`).
TIMESTAMP_PATTERN = (
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?))?"
    r"\s*(?P<offset>Z|[+-]\d{2}:?\d{2})?$"
)


def parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO-8601 strings -> UTC timestamps; naive values are Lima local time. Bad or empty -> NaT."""
    s = values.astype("string").str.strip()
    parts = s.str.extract(TIMESTAMP_PATTERN)
    body = parts["date"] + " " + parts["time"].fillna("00:00:00")
    naive = pd.to_datetime(body, format="ISO8601", errors="coerce")
    off = parts["offset"].fillna("")
    sign = off.str.slice(0, 1).map({"+": 1, "-": -1}).fillna(1)
    digits = off.str.replace(":", "", regex=False).str.slice(1)
    hours = pd.to_numeric(digits.str.slice(0, 2), errors="coerce")
    minutes = pd.to_numeric(digits.str.slice(2, 4), errors="coerce")
    offset_min = (sign * (hours * 60 + minutes)).where(off != "", LIMA_OFFSET_MINUTES)
    offset_min = offset_min.where(off != "Z", 0).astype("float64")
    utc = naive - pd.to_timedelta(offset_min, unit="m")
    return pd.to_datetime(utc).dt.tz_localize("UTC")


def lima_dates(utc: pd.Series) -> pd.Series:
    """The Lima calendar date of each UTC timestamp (NaT -> NaT)."""
    return (utc.dt.tz_convert(LIMA_TZ).dt.tz_localize(None).dt.normalize()).dt.date


@lru_cache(maxsize=64)
def _peru_holidays(year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays("PE", years=year).keys())


def is_business_day(day: dt.date, extra_non_working_days: Iterable[dt.date] = ()) -> bool:
    return day.weekday() < 5 and day not in _peru_holidays(day.year) and day not in set(extra_non_working_days)


def business_calendar(first: dt.date, last: dt.date, extra_non_working_days: Iterable[dt.date] = ()) -> pd.DataFrame:
    """One row per calendar day: `day`, `is_business_day`, `business_day_seq` (business days up to and including it)."""
    extra = set(extra_non_working_days)
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    flags = [d.weekday() < 5 and d not in _peru_holidays(d.year) and d not in extra for d in days]
    frame = pd.DataFrame({"day": pd.to_datetime(days).date, "is_business_day": flags})
    frame["business_day_seq"] = frame["is_business_day"].cumsum().astype("int64")
    return frame


def nth_business_day_after(day: dt.date, n: int, extra_non_working_days: Iterable[dt.date] = ()) -> dt.date:
    """The n-th business day strictly after `day`."""
    extra = tuple(extra_non_working_days)
    current, found = day, 0
    while found < n:
        current += dt.timedelta(days=1)
        if is_business_day(current, extra):
            found += 1
    return current
