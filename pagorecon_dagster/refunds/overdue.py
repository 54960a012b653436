"""Refunds buyers are still waiting for: not paid within 3 Peru business days of approval."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import duckdb

from pagorecon_dagster.core.lima import LIMA_TZ, is_business_day, nth_business_day_after
from pagorecon_dagster.refunds import state

DUE_BUSINESS_DAYS = 3


@dataclass(frozen=True)
class OverdueRefund:
    refund_id: str
    store_id: str
    order_id: str | None
    cip: str
    amount_cents: int
    currency: str
    status: str               # as of now: approved | submitted | paid (paid after as_of_date)
    approved_at: dt.datetime
    due_date: dt.date         # the last Lima business date it was due
    business_days_late: int   # business days after due_date up to and including as_of_date


def overdue_refunds(
    con: duckdb.DuckDBPyConnection, as_of_date: dt.date, extra_non_working_days: Iterable[dt.date] = ()
) -> list[OverdueRefund]:
    """Refunds approved on Lima date A that were still unpaid at the end of `as_of_date`, where
    `as_of_date` is after the 3rd business day after A (business days skip weekends, `holidays` PE
    and `extra_non_working_days`). Rejected and failed refunds are closed, not overdue; a refund
    paid after `as_of_date` was overdue on that date."""
    extra = tuple(extra_non_working_days)
    lima = ZoneInfo(LIMA_TZ)
    candidates = state.rows(
        con,
        """SELECT refund_id, store_id, order_id, cip, amount_cents, currency, status, approved_at, completed_at
           FROM refunds
           WHERE approved_at IS NOT NULL AND status IN ('approved', 'submitted', 'paid')
           ORDER BY approved_at, refund_id""",
    )
    found = []
    for r in candidates:
        paid_on = r["completed_at"].astimezone(lima).date() if r["status"] == state.PAID else None
        if paid_on is not None and paid_on <= as_of_date:
            continue
        due = nth_business_day_after(r["approved_at"].astimezone(lima).date(), DUE_BUSINESS_DAYS, extra)
        if as_of_date <= due:
            continue
        late = sum(1 for n in range(1, (as_of_date - due).days + 1)
                   if is_business_day(due + dt.timedelta(days=n), extra))
        found.append(OverdueRefund(
            r["refund_id"], r["store_id"], r["order_id"], r["cip"], r["amount_cents"], r["currency"], r["status"],
            r["approved_at"], due, late,
        ))
    return found

