"""The arithmetic every report shares, in integer céntimos: totals by status and currency, the
expected net, what is still open and how old it is, and the bridge from orders to net.

Currencies are never added together: an order counts under its currency, a payment under the
currency it was paid in (an FX-converted item puts its order total in PEN and its payment in USD)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pagorecon_dagster.core.lima import business_calendar
from pagorecon_dagster.reconciliation import catalog
from pagorecon_dagster.reports.data import Item, Reversal

# The statuses in report order, and their groups for the charts and the all-stores table
# (reconciliation/catalog.py).
STATUS_ORDER = catalog.status_codes()
MATCHED, NEEDS_ACTION, WAITING, CLOSED, GROUPS = catalog.MATCHED, catalog.NEEDS_ACTION, catalog.WAITING, catalog.CLOSED, catalog.GROUPS
AGING_BUCKETS = (("0-2", 0, 2), ("3-7", 3, 7), ("8-30", 8, 30), (">30", 31, None))


def status_rank(status: str) -> int:
    codes = catalog.status_codes()
    return codes.index(status) if status in codes else len(codes)


group_of = catalog.group_of


def is_discrepancy(item: Item) -> bool:
    return group_of(item.status) == NEEDS_ACTION


@dataclass
class StatusTotals:
    items: int = 0
    order_total_cents: int = 0
    paid_amount_cents: int = 0
    refunded_cents: int = 0


def totals_by_status(items: Iterable[Item]) -> dict[tuple[str, str | None, str], StatusTotals]:
    """(currency, paid currency, status) -> totals, the grain of `recon_daily_summary`: items and
    order totals under the item's currency, paid and refunded amounts under the currency paid
    (None for items with no payment). Ordered by currency, paid currency (unpaid last), status."""
    totals: dict[tuple[str, str | None, str], StatusTotals] = defaultdict(StatusTotals)
    for item in items:
        row = totals[(item.currency, item.paid_currency if item.is_paid else None, item.status)]
        row.items += 1
        row.order_total_cents += item.order_total_cents or 0
        if item.is_paid:
            row.paid_amount_cents += item.paid_amount_cents
            row.refunded_cents += item.refunded_cents
    return dict(sorted(totals.items(), key=lambda kv: (kv[0][0], kv[0][1] is None, kv[0][1] or "", status_rank(kv[0][2]))))


@dataclass
class Net:
    """Money of one currency: what was collected, what PagoEfectivo keeps, what went back."""

    collected_cents: int = 0
    commission_cents: int = 0
    igv_cents: int = 0
    refunded_cents: int = 0
    reversed_cents: int = 0
    payments: int = 0
    unknown_fees: int = 0  # payments whose commission or IGV is not in the statement

    @property
    def gross_cents(self) -> int:
        """Everything collected, including payments the bank reversed afterwards."""
        return self.collected_cents + self.reversed_cents

    @property
    def net_cents(self) -> int:
        return self.collected_cents - self.commission_cents - self.igv_cents - self.refunded_cents


def net_by_currency(items: Iterable[Item], reversals: Iterable[Reversal] = ()) -> dict[str, Net]:
    nets: dict[str, Net] = defaultdict(Net)
    for item in items:
        if not item.is_paid:
            continue
        net = nets[item.paid_currency]
        net.payments += 1
        net.collected_cents += item.paid_amount_cents
        net.commission_cents += item.commission_cents or 0
        net.igv_cents += item.igv_cents or 0
        net.refunded_cents += item.refunded_cents
        if item.commission_cents is None or item.igv_cents is None:
            net.unknown_fees += 1
    for reversal in reversals:
        nets[reversal.currency].reversed_cents += reversal.amount_cents
    return dict(sorted(nets.items()))


def open_amount(item: Item) -> tuple[str, int] | None:
    """(currency, céntimos) still to collect, refund or decide on for this item; None when settled."""
    if group_of(item.status) in (MATCHED, CLOSED):
        return None
    # Paid money not owed (`difference_cents`): a refund candidate's to refund, a payment with no
    # order's for a person to decide on; what is refunded already is no longer open.
    if item.refund_candidate or (item.is_paid and item.order_total_cents is None):
        remaining = (item.difference_cents or 0) - item.refunded_cents
        return (item.paid_currency or item.currency, remaining) if remaining > 0 else None
    if item.is_paid and item.paid_currency == item.order_currency and (item.difference_cents or 0) < 0:
        return item.currency, -item.difference_cents  # underpaid: the rest is still to collect
    # awaiting, missing, reversed, currency mismatch: the order itself is not settled
    return item.currency, item.order_total_cents or 0


def is_refunded(item: Item) -> bool:
    """A refund candidate whose refunds already cover what had to go back."""
    return item.refund_candidate and item.refunded_cents > 0 and open_amount(item) is None


class BusinessDays:
    """Peru business days (core.lima) between dates of one report."""

    def __init__(self, first: dt.date, last: dt.date, extra_non_working_days: Sequence[dt.date] = ()):
        frame = business_calendar(first, last, extra_non_working_days)
        self._seq = dict(zip(frame["day"], frame["business_day_seq"].astype(int)))
        self._business = dict(zip(frame["day"], frame["is_business_day"].astype(bool)))

    def is_business_day(self, day: dt.date) -> bool:
        return self._business[day]

    def age(self, since: dt.date, as_of: dt.date) -> int:
        """Business days strictly after `since`, up to and including `as_of` (0 if as_of is earlier)."""
        return max(0, self._seq[as_of] - self._seq[since])

    def count(self, first: dt.date, last: dt.date) -> int:
        return sum(1 for day, business in self._business.items() if business and first <= day <= last)


def aging_bucket(age: int) -> str:
    for label, low, high in AGING_BUCKETS:
        if age >= low and (high is None or age <= high):
            return label
    raise ValueError(f"negative age {age}")


@dataclass
class BridgeLine:
    status: str
    reason: str | None
    items: int = 0
    orders_cents: int = 0
    collected_cents: int = 0

    @property
    def effect_cents(self) -> int:
        """What this status adds to (collected) or takes from (not collected) the sum of orders."""
        return self.collected_cents - self.orders_cents


def bridge(items: Iterable[Item], currency: str) -> tuple[int, list[BridgeLine]]:
    """Sum of the orders in `currency`, and per (status, reason) how the money collected in that
    currency differs from them. sum of orders + sum of effects = collected."""
    lines: dict[tuple[str, str | None], BridgeLine] = {}
    orders_total = 0
    for item in items:
        in_orders = item.order_currency == currency and item.order_total_cents is not None
        in_collected = item.is_paid and item.paid_currency == currency
        if not (in_orders or in_collected):
            continue
        line = lines.setdefault((item.status, item.reason), BridgeLine(item.status, item.reason))
        line.items += 1
        if in_orders:
            line.orders_cents += item.order_total_cents
            orders_total += item.order_total_cents
        if in_collected:
            line.collected_cents += item.paid_amount_cents
    ordered = sorted(lines.values(), key=lambda ln: (status_rank(ln.status), ln.reason or ""))
    return orders_total, ordered
