"""Sections more than one report shows: net by currency, totals by status, the status chart and
the status legend; and the words that frame every report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pagorecon_dagster.reports import svg
from pagorecon_dagster.reports.content import COUNT, MONEY, Chart, Column, Table
from pagorecon_dagster.reports.data import Item
from pagorecon_dagster.reports.figures import (
    CLOSED, GROUPS, MATCHED, NEEDS_ACTION, STATUS_ORDER, WAITING, Net, StatusTotals, group_of,
)
from pagorecon_dagster.reports.language import Catalog

GROUP_COLOURS = {MATCHED: svg.GREEN, NEEDS_ACTION: svg.RED, WAITING: svg.AMBER, CLOSED: svg.GREY}
GROUP_LABELS = {MATCHED: "group_matched", NEEDS_ACTION: "group_needs_action", WAITING: "group_waiting", CLOSED: "group_closed"}


def group_legend(t: Catalog) -> list[tuple[str, str]]:
    return [(t(GROUP_LABELS[g]), GROUP_COLOURS[g]) for g in GROUPS]


def group_counts(items: Iterable[Item]) -> list[int]:
    counts = dict.fromkeys(GROUPS, 0)
    for item in items:
        counts[group_of(item.status)] += 1
    return [counts[g] for g in GROUPS]


def net_table(t: Catalog, nets: Mapping[str, Net]) -> Table:
    table = Table(
        "net", t("net_title"), t("sheet_net"),
        [Column(t("col_currency")), Column(t("col_payments"), COUNT), Column(t("col_collected"), MONEY),
         Column(t("col_commissions"), MONEY), Column(t("col_igv"), MONEY), Column(t("col_refunds"), MONEY),
         Column(t("col_net"), MONEY), Column(t("col_unknown_fees"), COUNT)],
        note=t("net_note"),
    )
    for currency, net in nets.items():
        table.add([currency, net.payments, net.collected_cents, net.commission_cents, net.igv_cents,
                   net.refunded_cents, net.net_cents, net.unknown_fees])
    return table


def totals_table(t: Catalog, totals: Mapping[tuple[str, str | None, str], StatusTotals]) -> Table:
    """The rows of `recon_daily_summary`, with a total per currency and paid currency: each total
    is in one currency, so PEN and USD are never added together."""
    table = Table(
        "totals", t("totals_title"), t("sheet_totals"),
        [Column(t("col_currency")), Column(t("col_paid_currency")), Column(t("col_status")), Column(t("col_status_name")),
         Column(t("col_items"), COUNT), Column(t("col_order_total"), MONEY), Column(t("col_paid"), MONEY),
         Column(t("col_refunded"), MONEY)],
        note=t("totals_note"),
    )
    blocks = list(dict.fromkeys((currency, paid) for currency, paid, _ in totals))
    for currency, paid in blocks:
        rows = [(status, row) for (c, p, status), row in totals.items() if (c, p) == (currency, paid)]
        for status, row in rows:
            table.add([currency, paid, status, t.status_name(status), row.items, row.order_total_cents,
                       row.paid_amount_cents, row.refunded_cents])
        table.add([currency, paid, t("total"), "", sum(r.items for _, r in rows), sum(r.order_total_cents for _, r in rows),
                   sum(r.paid_amount_cents for _, r in rows), sum(r.refunded_cents for _, r in rows)], total=True)
    return table


def status_chart(t: Catalog, items: list[Item]) -> Chart:
    """Items per status, each bar in its group's colour."""
    rows = []
    for status in STATUS_ORDER:
        count = sum(1 for i in items if i.status == status)
        if count:
            values = [count if group_of(status) == g else 0 for g in GROUPS]
            rows.append((t.status_name(status), values))
    title = t("status_chart_title")
    return Chart(title, svg.stacked_bars(title, rows, group_legend(t)))


def legend_table(t: Catalog) -> Table:
    table = Table(
        "legend", t("legend_title"), t("sheet_legend"),
        [Column(t("col_status")), Column(t("col_status_name")), Column(t("col_group")), Column(t("col_meaning")),
         Column(t("col_action"))],
    )
    for status in t.statuses():
        table.add([status, t.status_name(status), t(GROUP_LABELS[group_of(status)]), t.status_meaning(status),
                   t.action(status, None)])
    return table
