"""All stores on one Lima date: one table and one chart, so a seller with ten stores sees them at
once. Every store of `pagorecon.yaml` has a row, also one with nothing that day (a silent store is
news too: its statements may be missing)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from pagorecon_dagster.config import StoreConfig
from pagorecon_dagster.reports import svg
from pagorecon_dagster.reports.content import COUNT, DATE, MONEY, Chart, Column, Report, Table
from pagorecon_dagster.reports.daily import store_label
from pagorecon_dagster.reports.data import Item
from pagorecon_dagster.reports.figures import (
    CLOSED, GROUPS, MATCHED, NEEDS_ACTION, WAITING, BusinessDays, Net, is_discrepancy, net_by_currency,
)
from pagorecon_dagster.reports.language import Catalog
from pagorecon_dagster.reports.sections import group_counts, group_legend, legend_table

GROUP_COLUMNS = {MATCHED: "col_matched", NEEDS_ACTION: "col_needs_action", WAITING: "col_waiting", CLOSED: "col_closed"}


def all_stores_path(day: dt.date) -> str:
    return f"all_stores/{day:%Y-%m}/all_stores_{day.isoformat()}"


def stores_table(t: Catalog, stores: Sequence[StoreConfig], items_by_store: Mapping[str, list[Item]],
                 coverage: Mapping[str, dt.date]) -> Table:
    table = Table(
        "stores", t("stores_title"), t("sheet_stores"),
        [Column(t("store")), Column(t("col_currency")), Column(t("col_items"), COUNT),
         *[Column(t(GROUP_COLUMNS[g]), COUNT) for g in GROUPS],
         Column(t("col_order_total"), MONEY), Column(t("col_collected"), MONEY), Column(t("col_commissions"), MONEY),
         Column(t("col_igv"), MONEY), Column(t("col_refunds"), MONEY), Column(t("col_net"), MONEY),
         Column(t("coverage"), DATE)],
        note=t("stores_note"),
    )
    totals: dict[str, list[int]] = {}
    for store in stores:
        items = items_by_store.get(store.id, [])
        nets = net_by_currency(items)
        currencies = sorted({i.currency for i in items} | set(nets)) or [""]
        for currency in currencies:
            counted = [i for i in items if i.currency == currency]
            net = nets.get(currency, Net())
            numbers = [len(counted), *group_counts(counted), sum(i.order_total_cents or 0 for i in counted),
                       net.collected_cents, net.commission_cents, net.igv_cents, net.refunded_cents, net.net_cents]
            table.add([store_label(store), currency, *numbers, coverage.get(store.id)])
            if currency:
                totals[currency] = [a + b for a, b in zip(totals.get(currency, [0] * len(numbers)), numbers)]
    for currency, numbers in sorted(totals.items()):
        table.add([t("total"), currency, *numbers, None], total=True)
    return table


def stores_chart(t: Catalog, stores: Sequence[StoreConfig], items_by_store: Mapping[str, list[Item]]) -> Chart:
    title = t("stores_chart_title")
    rows = [(store_label(s), group_counts(items_by_store.get(s.id, []))) for s in stores]
    return Chart(title, svg.stacked_bars(title, rows, group_legend(t)))


def build_all_stores(
    t: Catalog,
    stores: Sequence[StoreConfig],
    day: dt.date,
    items_by_store: Mapping[str, list[Item]],
    coverage: Mapping[str, dt.date],
    calendar: BusinessDays,
) -> Report:
    all_items = [i for items in items_by_store.values() for i in items]
    return Report(
        kind="all_stores",
        path=all_stores_path(day),
        title=t("all_stores_title", day=day.isoformat()),
        language=t.language,
        facts=[
            (t("date"), t.day(day)),
            (t("day_kind"), t("business_day") if calendar.is_business_day(day) else t("non_business_day")),
            (t("stores"), str(len(stores))),
        ],
        blocks=[stores_chart(t, stores, items_by_store), stores_table(t, stores, items_by_store, coverage), legend_table(t)],
        footer=t("footer"),
        empty_text=t("none"),
        cover_sheet=t("cover_sheet"),
        summary=f"all stores {day}: " + t(
            "summary_all_stores", stores=len(stores), items=len(all_items), action=sum(1 for i in all_items if is_discrepancy(i))
        ),
    )
