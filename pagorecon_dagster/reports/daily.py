"""The daily report of one store and Lima date: totals by status and currency, the discrepancies
with their evidence and a suggested action, the day's payments with commission and IGV, the
refunds of the day, and the expected net."""

from __future__ import annotations

import datetime as dt

from pagorecon_dagster.config import StoreConfig
from pagorecon_dagster.core.money import format_cents
from pagorecon_dagster.reconciliation.diff import Counts
from pagorecon_dagster.reports.content import DATE, MONEY, Column, Report, Table
from pagorecon_dagster.reports.data import Item, Refund
from pagorecon_dagster.reports.figures import (
    BusinessDays, is_discrepancy, is_refunded, net_by_currency, status_rank, totals_by_status,
)
from pagorecon_dagster.reports.language import Catalog
from pagorecon_dagster.reports.safety import FREE_TEXT, IDENTIFIER, PERSONAL
from pagorecon_dagster.reports.sections import legend_table, net_table, status_chart, totals_table


def daily_path(store_id: str, day: dt.date) -> str:
    return f"daily/{day:%Y-%m}/{store_id}_{day.isoformat()}"


def store_label(store: StoreConfig) -> str:
    return f"{store.name} ({store.id})"


def coverage_text(t: Catalog, coverage: dt.date | None) -> str:
    return t("as_of_value", day=coverage.isoformat()) if coverage else t("as_of_none")


def provisional_fact(t: Catalog, items: list[Item]) -> list[tuple[str, str]]:
    """The marker of a day whose statements are not final yet; a final day shows none."""
    provisional = sum(1 for i in items if i.provisional)
    return [(t("provisional"), t("provisional_value", items=provisional))] if provisional else []


def changed_fact(t: Catalog, store: StoreConfig, day: dt.date, changed: Counts | None) -> list[tuple[str, str]]:
    """What the last rerun of the day changed; a day it left as it was (or reconciled once only) shows nothing."""
    if changed is None or not changed.any:
        return []
    return [(t("changed"), t("changed_value", added=changed.added, removed=changed.removed, changed=changed.changed,
                             store=store.id, day=day.isoformat()))]


def suggested_action(t: Catalog, item: Item) -> str:
    return t.refunded_action() if is_refunded(item) else t.action(item.status, item.reason)


def discrepancies_table(t: Catalog, items: list[Item]) -> Table:
    table = Table(
        "discrepancies", t("discrepancies_title"), t("sheet_discrepancies"),
        [Column(t("col_status")), Column(t("col_reason")), Column(t("col_order"), IDENTIFIER), Column(t("col_cip"), IDENTIFIER),
         Column(t("col_currency")), Column(t("col_order_total"), MONEY), Column(t("col_paid_currency")),
         Column(t("col_paid"), MONEY), Column(t("col_difference"), MONEY), Column(t("col_refunded"), MONEY),
         Column(t("col_action")), Column(t("col_evidence"), FREE_TEXT)],
        note=t("discrepancies_note"),
    )
    for item in sorted((i for i in items if is_discrepancy(i)), key=lambda i: (status_rank(i.status), i.reference or "", i.cip or "")):
        table.add([item.status, t.reason(item.reason), item.order_id, item.cip, item.order_currency, item.order_total_cents,
                   item.paid_currency, item.paid_amount_cents, item.difference_cents, item.refunded_cents,
                   suggested_action(t, item), t.evidence(item)])
    return table


def payments_table(t: Catalog, items: list[Item]) -> Table:
    table = Table(
        "payments", t("payments_title"), t("sheet_payments"),
        [Column(t("col_cip"), IDENTIFIER), Column(t("col_order"), IDENTIFIER), Column(t("col_status")), Column(t("col_currency")),
         Column(t("col_paid"), MONEY), Column(t("col_commission"), MONEY), Column(t("col_igv"), MONEY),
         Column(t("col_refunded"), MONEY), Column(t("col_net"), MONEY)],
        note=t("payments_note"),
    )
    paid = sorted((i for i in items if i.is_paid), key=lambda i: (i.paid_currency, i.cip or ""))
    for currency in sorted({i.paid_currency for i in paid}):
        rows = [i for i in paid if i.paid_currency == currency]
        for item in rows:
            net = item.paid_amount_cents - (item.commission_cents or 0) - (item.igv_cents or 0) - item.refunded_cents
            table.add([item.cip, item.order_id, item.status, currency, item.paid_amount_cents, item.commission_cents,
                       item.igv_cents, item.refunded_cents, net])
        totals = net_by_currency(rows)[currency]
        table.add([t("total"), "", "", currency, totals.collected_cents, totals.commission_cents, totals.igv_cents,
                   totals.refunded_cents, totals.net_cents], total=True)
    return table


def refunds_table(t: Catalog, refunds: list[Refund]) -> Table:
    table = Table(
        "refunds", t("refunds_title"), t("sheet_refunds"),
        [Column(t("col_refund_id"), IDENTIFIER), Column(t("col_order"), IDENTIFIER), Column(t("col_cip"), IDENTIFIER),
         Column(t("col_currency")), Column(t("col_amount"), MONEY), Column(t("col_refund_status")),
         Column(t("col_reason"), FREE_TEXT), Column(t("col_requested_by"), IDENTIFIER),
         Column(t("col_beneficiary_document"), PERSONAL), Column(t("col_beneficiary_account"), PERSONAL),
         Column(t("col_requested_at"), DATE), Column(t("col_completed_at"), DATE)],
        note=t("refunds_note"),
    )
    for r in refunds:
        table.add([r.refund_id, r.order_id, r.cip, r.currency, r.amount_cents, r.status, r.reason, r.requested_by,
                   r.beneficiary_document, r.beneficiary_account, r.requested_lima, r.completed_lima])
    return table


def build_daily(
    t: Catalog,
    store: StoreConfig,
    day: dt.date,
    items: list[Item],
    refunds: list[Refund],
    coverage: dt.date | None,
    calendar: BusinessDays,
    changed: Counts | None = None,
) -> Report:
    nets = net_by_currency(items)
    needing_action = sum(1 for i in items if is_discrepancy(i))
    net_words = ", ".join(format_cents(n.net_cents, c) for c, n in nets.items()) or "0.00"
    return Report(
        kind="daily",
        path=daily_path(store.id, day),
        title=t("daily_title", store=store_label(store), day=day.isoformat()),
        language=t.language,
        facts=[
            (t("store"), store_label(store)),
            (t("date"), t.day(day)),
            (t("day_kind"), t("business_day") if calendar.is_business_day(day) else t("non_business_day")),
            (t("coverage"), coverage_text(t, coverage)),
            *provisional_fact(t, items),
            *changed_fact(t, store, day, changed),
        ],
        blocks=[
            net_table(t, nets),
            status_chart(t, items),
            totals_table(t, totals_by_status(items)),
            discrepancies_table(t, items),
            payments_table(t, items),
            refunds_table(t, refunds),
            legend_table(t),
        ],
        footer=t("footer"),
        empty_text=t("none"),
        cover_sheet=t("cover_sheet"),
        summary=f"`{store.id}` {day}: " + t("summary_daily", items=len(items), action=needing_action, net=net_words),
    )
