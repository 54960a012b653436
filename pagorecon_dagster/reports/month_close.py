"""The month close of one store, per currency: gross collected, reversals, commissions, IGV,
refunds and net; the open items by age; and the bridge that explains, status by status, why the
net differs from the sum of the month's orders.

The month holds the items whose `business_date` falls in it (the same items as its daily
reports). "As of" is the store's statement coverage, read from the data: rerunning the close over
the same data gives the same report, whatever the day it runs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pagorecon_dagster.config import StoreConfig
from pagorecon_dagster.core.money import format_cents
from pagorecon_dagster.reports import svg
from pagorecon_dagster.reports.content import COUNT, DATE, MONEY, Chart, Column, Report, Table
from pagorecon_dagster.reports.daily import store_label, suggested_action
from pagorecon_dagster.reports.data import Item, Reversal
from pagorecon_dagster.reports.figures import (
    AGING_BUCKETS, NEEDS_ACTION, WAITING, BusinessDays, Net, aging_bucket, bridge, group_of, net_by_currency,
    open_amount,
)
from pagorecon_dagster.reports.language import Catalog
from pagorecon_dagster.reports.safety import FREE_TEXT, IDENTIFIER
from pagorecon_dagster.reports.sections import GROUP_COLOURS, GROUP_LABELS, legend_table


def month_close_path(store_id: str, month: dt.date) -> str:
    return f"month_close/{month:%Y-%m}/{store_id}_{month:%Y-%m}_close"


def month_last_day(month: dt.date) -> dt.date:
    following = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)


def figures_table(t: Catalog, nets: dict[str, Net]) -> Table:
    table = Table(
        "month_figures", t("month_figures_title"), t("sheet_month"),
        [Column(t("col_currency")), Column(t("col_payments"), COUNT), Column(t("col_gross"), MONEY),
         Column(t("col_reversals"), MONEY), Column(t("col_commissions"), MONEY), Column(t("col_igv"), MONEY),
         Column(t("col_refunds"), MONEY), Column(t("col_month_net"), MONEY), Column(t("col_unknown_fees"), COUNT)],
        note=t("month_figures_note"),
    )
    for currency, net in nets.items():
        table.add([currency, net.payments, net.gross_cents, net.reversed_cents, net.commission_cents, net.igv_cents,
                   net.refunded_cents, net.net_cents, net.unknown_fees])
    return table


def bridge_rows(t: Catalog, items: list[Item], currency: str, net: Net):
    """The bridge of one currency: table rows (cells, is_total) — orders, each status, fees,
    refunds, net — and the same steps for the waterfall chart (label, céntimos, is_total)."""
    orders_total, lines = bridge(items, currency)
    order_items = sum(1 for i in items if i.order_currency == currency and i.order_total_cents is not None)
    fees = (("line_commissions", "line_commissions_why", -net.commission_cents),
            ("line_igv", "line_igv_why", -net.igv_cents),
            ("line_refunds", "line_refunds_why", -net.refunded_cents))
    rows: list[tuple[list[object], bool]] = [
        ([currency, t("line_orders"), "", "", order_items, orders_total, None, orders_total, t("line_orders_why")], False)
    ]
    steps: list[tuple[str, int, bool]] = [(t("line_orders"), orders_total, True)]
    for line in lines:
        rows.append(([currency, t.status_name(line.status), line.status, t.reason(line.reason), line.items,
                      line.orders_cents, line.collected_cents, line.effect_cents, t.status_meaning(line.status)], False))
        if line.effect_cents:
            steps.append((t.status_name(line.status) + (f" · {line.reason}" if line.reason else ""), line.effect_cents, False))
    for label, why, cents in fees:
        rows.append(([currency, t(label), "", "", None, None, None, cents, t(why)], False))
        if cents:
            steps.append((t(label), cents, False))
    rows.append(([currency, t("line_net"), "", "", None, None, net.collected_cents, net.net_cents, t("line_net_why")], True))
    steps.append((t("line_net"), net.net_cents, True))
    if sum(value for _, value, is_total in steps if not is_total) + orders_total != net.net_cents:
        # the bridge is an identity; if it does not close, the close must not go out
        raise RuntimeError(f"month-close bridge for {currency} does not add up to the net {net.net_cents}: {steps}")
    return rows, steps


def bridge_table(t: Catalog, items: list[Item], nets: dict[str, Net]) -> tuple[Table, list[Chart]]:
    table = Table(
        "bridge", t("bridge_title"), t("sheet_bridge"),
        [Column(t("col_currency")), Column(t("col_line")), Column(t("col_status")), Column(t("col_reason")),
         Column(t("col_items"), COUNT), Column(t("col_orders"), MONEY), Column(t("col_collected"), MONEY),
         Column(t("col_effect"), MONEY), Column(t("col_explanation"))],
        note=t("bridge_note"),
    )
    charts = []
    for currency, net in nets.items():
        rows, steps = bridge_rows(t, items, currency, net)
        for cells, is_total in rows:
            table.add(cells, total=is_total)
        title = t("bridge_chart_title", currency=currency)
        charts.append(Chart(title, svg.waterfall(title, steps, lambda cents, cur=currency: format_cents(cents, cur))))
    return table, charts


@dataclass(frozen=True)
class OpenItem:
    item: Item
    currency: str
    cents: int
    age: int  # business days
    bucket: str


def open_items_of(items: list[Item], as_of: dt.date | None, calendar: BusinessDays) -> list[OpenItem]:
    """Items with money still to collect, refund or decide on, oldest first."""
    found = []
    for item in items:
        amount = open_amount(item)
        if amount is not None:
            age = calendar.age(item.business_date, as_of) if as_of else 0
            found.append(OpenItem(item, amount[0], amount[1], age, aging_bucket(age)))
    return sorted(found, key=lambda o: (-o.age, o.item.business_date, o.item.reference or "", o.item.cip or ""))


def aging_tables(t: Catalog, open_items: list[OpenItem]) -> tuple[Table, Chart, Table]:
    summary = Table(
        "aging", t("aging_title"), t("sheet_aging"),
        [Column(t("col_currency")), Column(t("col_bucket")), Column(t("col_items"), COUNT), Column(t("col_open_amount"), MONEY)],
        note=t("aging_note"),
    )
    for currency in sorted({o.currency for o in open_items}):
        in_currency = [o for o in open_items if o.currency == currency]
        for label, _, _ in AGING_BUCKETS:
            bucket = [o for o in in_currency if o.bucket == label]
            summary.add([currency, label, len(bucket), sum(o.cents for o in bucket)])
        summary.add([currency, t("total"), len(in_currency), sum(o.cents for o in in_currency)], total=True)

    groups = (NEEDS_ACTION, WAITING)
    rows = [(label, [sum(1 for o in open_items if o.bucket == label and group_of(o.item.status) == g) for g in groups])
            for label, _, _ in AGING_BUCKETS]
    title = t("aging_chart_title")
    chart = Chart(title, svg.stacked_bars(title, rows, [(t(GROUP_LABELS[g]), GROUP_COLOURS[g]) for g in groups]))

    detail = Table(
        "open_items", t("open_items_title"), t("sheet_open_items"),
        [Column(t("col_date"), DATE), Column(t("col_age"), COUNT), Column(t("col_bucket")), Column(t("col_status")),
         Column(t("col_reason")), Column(t("col_order"), IDENTIFIER), Column(t("col_cip"), IDENTIFIER),
         Column(t("col_currency")), Column(t("col_open_amount"), MONEY), Column(t("col_action")),
         Column(t("col_evidence"), FREE_TEXT)],
    )
    for o in open_items:
        detail.add([o.item.business_date, o.age, o.bucket, o.item.status, t.reason(o.item.reason), o.item.order_id,
                    o.item.cip, o.currency, o.cents, suggested_action(t, o.item), t.evidence(o.item)])
    return summary, chart, detail


def build_month_close(
    t: Catalog,
    store: StoreConfig,
    month: dt.date,
    items: list[Item],
    reversals: list[Reversal],
    as_of: dt.date | None,
    calendar: BusinessDays,
) -> Report:
    nets = net_by_currency(items, reversals)
    for currency in {i.order_currency for i in items if i.order_currency}:
        nets.setdefault(currency, Net())  # a currency with orders but no money still needs its bridge
    nets = dict(sorted(nets.items()))
    bridge_tab, bridge_charts = bridge_table(t, items, nets)
    open_items = open_items_of(items, as_of, calendar)
    aging, aging_chart, open_detail = aging_tables(t, open_items)
    net_words = ", ".join(format_cents(n.net_cents, c) for c, n in nets.items()) or "0.00"
    return Report(
        kind="month_close",
        path=month_close_path(store.id, month),
        title=t("month_title", store=store_label(store), month=t.month(month)),
        language=t.language,
        facts=[
            (t("store"), store_label(store)),
            (t("month"), t.month(month)),
            (t("as_of"), t("as_of_value", day=as_of.isoformat()) if as_of else t("as_of_none")),
            (t("business_days_in_month"), str(calendar.count(month, month_last_day(month)))),
        ],
        blocks=[figures_table(t, nets), bridge_tab, *bridge_charts, aging, aging_chart, open_detail, legend_table(t)],
        footer=t("footer"),
        empty_text=t("none"),
        cover_sheet=t("cover_sheet"),
        summary=f"`{store.id}` {month:%Y-%m} close: " + t("summary_month", items=len(items), open=len(open_items), net=net_words),
    )
