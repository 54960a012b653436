"""Lima time and Peru business days. Lima is UTC-5 all year (no daylight saving since 1994)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache

import holidays
import pandas as pd

LIMA_TZ = "America/Lima"
# Arrow-backed strings: pandas' string methods then run in C++ (pyarrow), not row by row.
TEXT = "string[pyarrow]"
LIMA_OFFSET_MINUTES = -300

def parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO-8601 strings -> UTC timestamps; naive values are Lima local time. Bad or empty -> NaT.

    Accepts `2026-07-14T19:30:00-05:00`, `...Z`, `...-0500`, Shopify's `2026-07-14 19:30:00 -0500`,
    naive `2026-07-14 19:30:00` and a bare date (midnight Lima). Vectorised: pandas' ISO parser
    does the work, so a million values take well under a second."""
    s = values.astype(TEXT).str.strip()
    # Shopify writes a space before the offset.
    s = s.str.replace(" -", "-", regex=False).str.replace(" +", "+", regex=False)
    # Past `YYYY-MM-DD` and the separator, an offset shows as `Z`, `+` or `-`; none means Lima time.
    tail = s.str.slice(11).fillna("")
    aware = (tail.str.contains("Z", regex=False) | tail.str.contains("+", regex=False) | tail.str.contains("-", regex=False)).astype(bool)
    # Parsed apart: given a mix, pandas would lend the naive values the offset of the aware ones.
    with_offset = pd.to_datetime(s.where(aware), format="ISO8601", utc=True, errors="coerce")
    lima_local = pd.to_datetime(s.where(~aware), format="ISO8601", errors="coerce")
    from_lima = (lima_local - pd.Timedelta(minutes=LIMA_OFFSET_MINUTES)).dt.tz_localize("UTC")
    return with_offset.where(aware, from_lima).astype("datetime64[ns, UTC]")


def lima_dates(utc: pd.Series) -> pd.Series:
    """The Lima calendar date of each UTC timestamp (NaT -> NaT)."""
    return (utc + pd.Timedelta(minutes=LIMA_OFFSET_MINUTES)).dt.tz_localize(None).dt.date


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
