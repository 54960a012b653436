"""The reports of a run's partitions, read from the warehouse in one pass each: a daily report per
store x date, an all-stores report per date, a month close per store x month."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

import duckdb

from pagorecon_dagster.config import Settings
from pagorecon_dagster.reports.all_stores import build_all_stores
from pagorecon_dagster.reports.content import Report
from pagorecon_dagster.reports.daily import build_daily
from pagorecon_dagster.reports.data import load_changes, load_coverage, load_items, load_refunds, load_reversals
from pagorecon_dagster.reports.figures import BusinessDays
from pagorecon_dagster.reports.language import Catalog
from pagorecon_dagster.reports.month_close import build_month_close, month_last_day

Keys = Sequence[tuple[str, dt.date]]


def daily_reports(settings: Settings, con: duckdb.DuckDBPyConnection, keys: Keys) -> list[Report]:
    """One report per (store, date) partition of the window, also for a day with nothing in it."""
    t = Catalog(settings.report_language)
    stores = sorted({s for s, _ in keys})
    start, end = min(d for _, d in keys), max(d for _, d in keys)
    items = defaultdict(list)
    for item in load_items(con, stores, start, end):
        items[(item.store_id, item.business_date)].append(item)
    refunds = defaultdict(list)
    for refund in load_refunds(con, stores, start, end):
        # a refund shows on the day it was requested and on the day it completed
        days = {refund.requested_lima.date() if refund.requested_lima else None,
                refund.completed_lima.date() if refund.completed_lima else None} - {None}
        for day in days:
            refunds[(refund.store_id, day)].append(refund)
    coverage = load_coverage(con)
    changed = load_changes(con, keys)
    calendar = BusinessDays(start, end, settings.extra_non_working_days)
    return [
        build_daily(t, settings.store(store), day, items[(store, day)], refunds[(store, day)], coverage.get(store), calendar,
                    changed.get((store, day)))
        for store, day in sorted(set(keys))
    ]


def all_stores_reports(settings: Settings, con: duckdb.DuckDBPyConnection, dates: Sequence[dt.date]) -> list[Report]:
    """One report per date, over every configured store."""
    t = Catalog(settings.report_language)
    days = sorted(set(dates))
    by_day: dict[dt.date, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for item in load_items(con, settings.store_ids, days[0], days[-1]):
        by_day[item.business_date][item.store_id].append(item)
    coverage = load_coverage(con)
    calendar = BusinessDays(days[0], days[-1], settings.extra_non_working_days)
    return [build_all_stores(t, settings.stores, day, by_day[day], coverage, calendar) for day in days]


def month_close_reports(settings: Settings, con: duckdb.DuckDBPyConnection, store_months: Keys) -> list[Report]:
    """One close per (store, month) key, over the whole month (a key's date is any day of it)."""
    t = Catalog(settings.report_language)
    keys = sorted({(store, day.replace(day=1)) for store, day in store_months})
    stores = sorted({s for s, _ in keys})
    first, last = min(m for _, m in keys), month_last_day(max(m for _, m in keys))
    items = defaultdict(list)
    for item in load_items(con, stores, first, last):
        items[(item.store_id, item.business_date.replace(day=1))].append(item)
    reversals = defaultdict(list)
    for reversal in load_reversals(con, stores, first, last):
        reversals[(reversal.store_id, reversal.business_date.replace(day=1))].append(reversal)
    coverage = load_coverage(con)
    as_of = {}
    for store in stores:
        # the store's statements say how far the data reaches; without any, its latest item does
        latest_item = max((i.business_date for (s, _), its in items.items() if s == store for i in its), default=None)
        as_of[store] = coverage.get(store) or latest_item
    known = [d for d in as_of.values() if d]
    calendar = BusinessDays(min([first, *known]), max([last, *known]), settings.extra_non_working_days)
    return [
        build_month_close(t, settings.store(store), month, items[(store, month)], reversals[(store, month)], as_of[store], calendar)
        for store, month in keys
    ]
