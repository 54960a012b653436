"""`reports/index.html`, the page finance starts from: the latest day first, then per store what
needs a person (open discrepancies, refunds awaiting approval, how far behind its statements are,
open alerts), and a link to every report written, by month, latest first.

Like the reports it is read from the warehouse and from the report files on disk, never from the
wall clock, so a rerun over the same data writes the same page. It is one self-contained HTML file
(the reports' CSS and Content-Security-Policy, no script), its links relative, so it opens from
the folder, a copy of it or a file share, offline."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import duckdb

from pagorecon_dagster.config import Settings, StoreConfig
from pagorecon_dagster.core.money import format_cents
from pagorecon_dagster.refunds.state import AWAITING_APPROVAL
from pagorecon_dagster.reports.all_stores import all_stores_path
from pagorecon_dagster.reports.content import COUNT, DATE, Column, Table, cell_text
from pagorecon_dagster.reports.daily import daily_path, store_label
from pagorecon_dagster.reports.data import ITEMS_SQL, Item, load_coverage
from pagorecon_dagster.reports.figures import NEEDS_ACTION, BusinessDays, open_amount
from pagorecon_dagster.reports.html import CSP, CSS
from pagorecon_dagster.reports.language import Catalog
from pagorecon_dagster.reports.month_close import month_close_path
from pagorecon_dagster.reports.safety import FREE_TEXT
from pagorecon_dagster.reports.writer import FORMATS, _replace
from pagorecon_dagster.warehouse.duckdb import table_type

INDEX_FILE = "index.html"
REPORT_FOLDERS = ("all_stores", "daily", "month_close")
_MONTH_FOLDER = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

# Items that need a person (and unknown statuses, which the catalog says need one too), with their
# payment's fees: the reports' own query, so "open" is decided by the same `open_amount`.
OPEN_CANDIDATES_SQL = f"""
SELECT * FROM ({ITEMS_SQL})
WHERE status NOT IN (SELECT status FROM status_catalog WHERE status_group <> ?)
"""

INDEX_CSS = """
a { color: #1565c0; }
td.links a { white-space: nowrap; } td.links a + a, dd a + a { margin-left: 8px; }
nav.months { margin: 4px 0 8px; } nav.months a { margin-right: 10px; white-space: nowrap; }
"""


@dataclass(frozen=True)
class Link:
    text: str
    href: str  # relative to reports/


@dataclass(frozen=True)
class Links:
    """A cell of links (the formats of one report)."""

    links: tuple[Link, ...]


@dataclass(frozen=True)
class StoreState:
    store: StoreConfig
    latest_day: dt.date | None
    open_discrepancies: int
    oldest_open: dt.date | None
    awaiting_approval: int
    awaiting_cents: Mapping[str, int]  # currency -> céntimos awaiting approval
    coverage: dt.date | None
    behind: int | None  # Peru business days from the coverage up to the latest day
    open_alerts: int


@dataclass(frozen=True)
class OpenAlert:
    store_id: str | None
    business_date: dt.date | None
    kind: str
    severity: str
    message: str


@dataclass
class MonthReports:
    """The report files written for one month: per day the all-stores and store reports."""

    month: dt.date  # its first day
    days: dict[dt.date, dict[str, Links]] = field(default_factory=dict)  # day -> column (store id or "") -> links
    closes: dict[str, Links] = field(default_factory=dict)  # store id -> its month close


@dataclass(frozen=True)
class IndexPage:
    latest_day: dt.date | None
    stores: Sequence[StoreState]
    alerts: Sequence[OpenAlert]
    months: Sequence[MonthReports]  # latest first


# -- what the page reads -------------------------------------------------------------------------------

def _links(reports_dir: Path, base: str) -> Links | None:
    """The formats of report `base` that exist on disk, or None when none does."""
    found = tuple(Link(fmt.upper(), f"{base}.{fmt}") for fmt in FORMATS if (reports_dir / f"{base}.{fmt}").is_file())
    return Links(found) if found else None


def written_reports(reports_dir: Path, stores: Sequence[StoreConfig]) -> list[MonthReports]:
    """Every report of `stores` on disk, by month and day, latest first. Paths come from the
    reports' own path functions, so the page links what the report assets write."""
    months = sorted(
        {dt.date(int(p.name[:4]), int(p.name[5:]), 1)
         for folder in REPORT_FOLDERS if (reports_dir / folder).is_dir()
         for p in (reports_dir / folder).iterdir() if p.is_dir() and _MONTH_FOLDER.match(p.name)},
        reverse=True,
    )
    found = []
    for month in months:
        reports = MonthReports(month)
        day = month
        while day.month == month.month:
            cells = {"": _links(reports_dir, all_stores_path(day)),
                     **{s.id: _links(reports_dir, daily_path(s.id, day)) for s in stores}}
            if any(cells.values()):
                reports.days[day] = {k: v for k, v in cells.items() if v}
            day += dt.timedelta(days=1)
        reports.days = dict(sorted(reports.days.items(), reverse=True))
        reports.closes = {s.id: links for s in stores if (links := _links(reports_dir, month_close_path(s.id, month)))}
        if reports.days or reports.closes:
            found.append(reports)
    return found


def _open_alerts(con: duckdb.DuckDBPyConnection, stores: Sequence[str]) -> list[OpenAlert]:
    """Alerts not resolved, of the configured stores or of none (a failed run), latest first."""
    if table_type(con, "alerts") is None:
        return []
    return [OpenAlert(*row) for row in con.execute(
        """SELECT store_id, business_date, kind, severity, message FROM alerts
           WHERE resolved_at IS NULL AND (store_id IS NULL OR list_contains(?, store_id))
           ORDER BY business_date DESC NULLS LAST, store_id NULLS FIRST, kind""", [list(stores)]
    ).fetchall()]


def _awaiting_approval(con: duckdb.DuckDBPyConnection, stores: Sequence[str]) -> dict[str, tuple[int, dict[str, int]]]:
    """store -> (refunds waiting for a person to approve them, their céntimos by currency)."""
    waiting: dict[str, tuple[int, dict[str, int]]] = {}
    if table_type(con, "refunds") is None:
        return waiting
    for store, currency, count, cents in con.execute(
        """SELECT store_id, currency, count(*), sum(amount_cents) FROM refunds
           WHERE status = ? AND list_contains(?, store_id) GROUP BY ALL ORDER BY ALL""", [AWAITING_APPROVAL, list(stores)]
    ).fetchall():
        total, amounts = waiting.get(store, (0, {}))
        waiting[store] = (total + count, {**amounts, currency: int(cents)})
    return waiting


def load_index(settings: Settings, con: duckdb.DuckDBPyConnection) -> IndexPage:
    """Everything the page shows, read from the warehouse and the report folder."""
    ids = settings.store_ids
    latest = dict(con.execute(
        "SELECT store_id, max(business_date) FROM recon_items WHERE list_contains(?, store_id) GROUP BY store_id", [ids]
    ).fetchall()) if table_type(con, "recon_items") else {}
    open_items: dict[str, list[Item]] = defaultdict(list)
    if latest:
        first = con.execute("SELECT min(business_date) FROM recon_items WHERE list_contains(?, store_id)", [ids]).fetchone()[0]
        for row in con.execute(OPEN_CANDIDATES_SQL, [ids, first, max(latest.values()), NEEDS_ACTION]).fetchall():
            item = Item(*row)
            if open_amount(item) is not None:  # refunded in full: no longer open
                open_items[item.store_id].append(item)
    coverage = {s: d for s, d in load_coverage(con).items() if s in ids}
    # The latest day the warehouse holds; without items, how far the statements reach.
    latest_day = max(latest.values(), default=None) or max(coverage.values(), default=None)
    known = [*coverage.values(), *([latest_day] if latest_day else [])]
    calendar = BusinessDays(min(known), max(known), settings.extra_non_working_days) if known else None
    alerts = _open_alerts(con, ids)
    waiting = _awaiting_approval(con, ids)
    nothing_waiting: tuple[int, dict[str, int]] = (0, {})
    stores = [
        StoreState(
            store=store,
            latest_day=latest.get(store.id),
            open_discrepancies=len(open_items[store.id]),
            oldest_open=min((i.business_date for i in open_items[store.id]), default=None),
            awaiting_approval=waiting.get(store.id, nothing_waiting)[0],
            awaiting_cents=waiting.get(store.id, nothing_waiting)[1],
            coverage=coverage.get(store.id),
            behind=calendar.age(coverage[store.id], latest_day) if store.id in coverage and calendar else None,
            open_alerts=sum(1 for a in alerts if a.store_id == store.id),
        )
        for store in settings.stores
    ]
    return IndexPage(latest_day, stores, alerts, written_reports(settings.reports, settings.stores))


# -- how it reads ----------------------------------------------------------------------------------------

def _anchors(links: Links) -> str:
    return "".join(f'<a href="{escape(link.href)}">{escape(link.text)}</a>' for link in links.links)


def _cell(column: Column, value: object) -> str:
    if isinstance(value, Links):
        return f'<td class="links">{_anchors(value)}</td>'
    return f'<td class="{column.kind}">{escape(cell_text(column, value))}</td>'


def _section(table: Table, empty_text: str, anchor: str = "") -> str:
    head = "".join(f'<th scope="col">{escape(c.label)}</th>' for c in table.columns)
    rows = "".join(
        ('<tr class="total">' if n in table.total_rows else "<tr>")
        + "".join(_cell(c, v) for c, v in zip(table.columns, row)) + "</tr>"
        for n, row in enumerate(table.rows)
    )
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    empty = f'<p class="empty">{escape(empty_text)}</p>' if not table.rows else ""
    ident = f' id="{escape(anchor)}"' if anchor else ""
    return (f'<section{ident}><h2>{escape(table.title)}</h2>{note}<table data-table="{escape(table.key)}">'
            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{empty}</section>")


def _html(links: Links | None) -> Link | None:
    return next((link for link in links.links if link.href.endswith(".html")), None) if links else None


def _amounts(cents: Mapping[str, int]) -> str:
    return "; ".join(format_cents(v, currency) for currency, v in sorted(cents.items()))


def stores_table(t: Catalog, page: IndexPage) -> Table:
    table = Table(
        "stores", t("index_stores_title"), t("sheet_stores"),
        [Column(t("store")), Column(t("index_latest_day"), DATE), Column(t("index_open_discrepancies"), COUNT),
         Column(t("index_oldest_open"), DATE), Column(t("index_awaiting_approval"), COUNT),
         Column(t("index_awaiting_amount")), Column(t("coverage"), DATE), Column(t("index_behind"), COUNT),
         Column(t("index_open_alerts"), COUNT), Column(t("index_latest_reports"))],
        note=t("index_stores_note"),
    )
    by_month = {m.month: m for m in page.months}
    for state in page.stores:
        latest = state.latest_day
        month = by_month.get(latest.replace(day=1)) if latest else None
        daily = month.days.get(latest, {}).get(state.store.id) if month else None
        close = month.closes.get(state.store.id) if month else None
        pages = (("index_link_daily", daily), ("index_link_close", close))
        links = Links(tuple(Link(t(label), html.href) for label, found in pages if (html := _html(found))))
        table.add([store_label(state.store), latest, state.open_discrepancies, state.oldest_open, state.awaiting_approval,
                   _amounts(state.awaiting_cents), state.coverage if state.coverage else t("as_of_none"),
                   state.behind, state.open_alerts, links])
    return table


def alerts_table(t: Catalog, page: IndexPage, stores: Mapping[str, StoreConfig]) -> Table:
    table = Table(
        "alerts", t("index_alerts_title"), t("index_alerts_title"),
        [Column(t("store")), Column(t("col_date"), DATE), Column(t("index_alert_kind")), Column(t("index_alert_severity")),
         Column(t("index_alert_message"), FREE_TEXT)],
    )
    for alert in page.alerts:
        store = stores.get(alert.store_id or "")
        table.add([store_label(store) if store else (alert.store_id or ""), alert.business_date, alert.kind, alert.severity,
                   alert.message])
    return table


def month_table(t: Catalog, reports: MonthReports, stores: Sequence[StoreConfig]) -> Table:
    table = Table(
        f"reports-{reports.month:%Y-%m}", t.month(reports.month), t.month(reports.month),
        [Column(t("col_date"), DATE), Column(t("index_all_stores")), *(Column(store_label(s)) for s in stores)],
    )
    if reports.closes:
        table.add([t("index_month_close"), None, *(reports.closes.get(s.id) for s in stores)], total=True)
    for day, cells in reports.days.items():
        table.add([t.day(day), cells.get(""), *(cells.get(s.id) for s in stores)])
    return table


def render_index(t: Catalog, settings: Settings, page: IndexPage) -> str:
    latest = page.latest_day
    latest_month = next((m for m in page.months if latest and m.month == latest.replace(day=1)), None)
    latest_all_stores = latest_month.days.get(latest, {}).get("") if latest_month else None
    facts = [(t("index_latest_day"), escape(t.day(latest)) if latest else escape(t("none"))),
             (t("stores"), str(len(page.stores)))]
    if latest_all_stores:
        facts.append((t("index_all_stores"), _anchors(latest_all_stores)))
    nav = "".join(f'<a href="#m-{m.month:%Y-%m}">{escape(t.month(m.month))}</a>' for m in page.months)
    stores = {s.id: s for s in settings.stores}
    blocks = [
        _section(stores_table(t, page), t("none")),
        _section(alerts_table(t, page, stores), t("none")),
        f'<section><h2>{escape(t("index_reports_title"))}</h2><nav class="months">{nav}</nav>'
        + ("" if page.months else f'<p class="empty">{escape(t("index_no_reports"))}</p>') + "</section>",
        *(_section(month_table(t, m, settings.stores), t("none"), f"m-{m.month:%Y-%m}") for m in page.months),
    ]
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in facts)
    title = t("index_title")
    return (
        f'<!DOCTYPE html>\n<html lang="{t.language}"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}{INDEX_CSS}</style></head>\n<body>"
        f'<header><h1>{escape(title)}</h1><dl class="facts">{dl}</dl></header>\n'
        + "\n".join(blocks)
        + f"\n<footer>{escape(t('index_footer'))}</footer></body></html>\n"
    )


def write_index(settings: Settings, page: IndexPage) -> Path:
    """Write `reports/index.html` (to a temporary name, then renamed: never half a page)."""
    settings.reports.mkdir(parents=True, exist_ok=True)
    html = render_index(Catalog(settings.report_language), settings, page)
    return _replace(settings.reports / INDEX_FILE, lambda p: p.write_text(html, encoding="utf-8"))
