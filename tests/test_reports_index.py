"""reports/index.html, the page finance starts from: written by `pagorecon run` after the reports,
its numbers equal to the warehouse's, every link to a report that exists, masked, in the report
language, and drawn by a real Chromium without a word on the console."""

from __future__ import annotations

import dataclasses
import datetime as dt
from html.parser import HTMLParser

import dagster as dg
import pytest

from pagorecon_dagster.cli import EXIT_OK, main
from pagorecon_dagster.config import load_settings
from pagorecon_dagster.definitions import MAIN_JOB, build_definitions
from pagorecon_dagster.jobs import INDEX_JOB, following_report_runs
from pagorecon_dagster.partitions import range_tags
from pagorecon_dagster.reports.assets import INDEX
from pagorecon_dagster.reports.index import INDEX_FILE, load_index, render_index
from pagorecon_dagster.reports.language import Catalog
from pagorecon_dagster.warehouse.duckdb import connect
from tests.conftest import Home
from tests.test_reports import FX, ORDERS, STATEMENTS, add_refund
from tests.test_reports_browser import start_chromium

D = dt.date.fromisoformat
# A later order, so the day the warehouse reaches (2026-07-20, a Monday) is past the statements
# (2026-07-15): 16, 17 and 20 July are the business days the store's statements are behind.
LATER_ORDER = "D1,2026-07-20 09:00:00,pending,PEN,15.00,0.00,PagoEfectivo,,,\n"
# A refund request always waits for a person.
REFUND_REQUEST = (
    "refund_id,order_id,cip,amount,currency,reason,requested_at,requested_by,beneficiary_document,beneficiary_account\n"
    "R-9,A1,90000001,20.00,PEN,Devolución parcial,2026-07-15T10:00:00-05:00,ana@tienda.pe,47291836,00219312345678901234\n"
)


class Page(HTMLParser):
    """The tables (by `data-table`, rows of cell texts), every link and every element id of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self._table = self._row = self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a":
            self.hrefs.append(attrs["href"])
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("data-table"), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "a" and self._cell is not None and self._cell:
            self._cell.append(" ")

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def records(self, key: str) -> list[dict[str, str]]:
        header, *rows = self.tables[key]
        return [dict(zip(header, row)) for row in rows]


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """`pagorecon run` over 2026-07-14..20 for both stores, as an operator types it."""
    root = tmp_path_factory.mktemp("index")
    home = Home(root / "home")
    home.path.mkdir()
    home.config()
    home.orders(ORDERS + LATER_ORDER)
    home.statements(STATEMENTS)
    home.drop("fx/sbs.csv", FX)
    home.drop("refunds/shop/requests.csv", REFUND_REQUEST)
    add_refund(home)  # A6's payment went back in full: no longer open
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(root / "dagster"))
        (root / "dagster").mkdir()
        assert main(["--home", str(home.path), "run", "--start", "2026-07-14", "--end", "2026-07-20"]) == EXIT_OK
        with dg.DagsterInstance.get() as instance:
            jobs = [run.job_name for run in reversed(instance.get_runs())]
    return home, jobs


def test_pagorecon_run_ends_by_writing_the_index(ran):
    home, jobs = ran
    assert jobs[0] == MAIN_JOB and jobs[-1] == INDEX_JOB and jobs.count(INDEX_JOB) == 1
    assert (home.path / "reports" / INDEX_FILE).is_file()


def test_each_store_row_equals_the_warehouse(ran):
    home, _ = ran
    page = Page((home.path / "reports" / INDEX_FILE).read_text(encoding="utf-8"))
    rows = {row["Store"]: row for row in page.records("stores")}
    latest = home.query("SELECT max(business_date) AS day FROM recon_items")[0]["day"]
    assert latest == D("2026-07-20")

    open_discrepancies = {r["store_id"]: r for r in home.query(
        # needs a person, and not a payment to give back that went back in full already
        """SELECT store_id, count(*) AS n, min(business_date) AS oldest
           FROM recon_items AS i JOIN status_catalog AS k ON k.status = i.status AND k.reason IS NOT DISTINCT FROM i.reason
           WHERE k.status_group = 'needs_action'
             AND NOT ((k.refund_candidate OR (i.paid_amount_cents IS NOT NULL AND i.order_total_cents IS NULL))
                      AND coalesce(i.difference_cents, 0) - i.refunded_cents <= 0)
           GROUP BY store_id""")}
    waiting = {r["store_id"]: r for r in home.query(
        "SELECT store_id, count(*) AS n, sum(amount_cents) AS cents FROM refunds WHERE status = 'awaiting_approval' GROUP BY ALL")}
    coverage = {r["store_id"]: r["coverage_date"] for r in home.query("SELECT store_id, coverage_date FROM statement_coverage")}
    seq = {r["day"]: r["business_day_seq"] for r in home.query("SELECT day, business_day_seq FROM business_calendar")}
    alerts = {r["store_id"]: r["n"] for r in home.query(
        "SELECT store_id, count(*) AS n FROM alerts WHERE resolved_at IS NULL GROUP BY ALL")}

    shop = rows["Canonical Shop (shop)"]
    assert shop["Latest day"] == "2026-07-20"
    assert int(shop["Open discrepancies"]) == open_discrepancies["shop"]["n"]
    assert shop["Oldest open since"] == open_discrepancies["shop"]["oldest"].isoformat()
    # A6 was paid for a cancelled order and refunded in full: it needs nobody any more
    assert home.query("SELECT count(*) AS n FROM recon_items WHERE status = 'PAID_CANCELLED_ORDER' AND refunded_cents > 0")[0]["n"] == 1
    assert int(shop["Refunds awaiting approval"]) == waiting["shop"]["n"] >= 1
    cents = waiting["shop"]["cents"]
    assert shop["Awaiting approval (amount)"] == f"PEN {cents // 100}.{cents % 100:02d}"
    assert shop["Statements cover up to"] == coverage["shop"].isoformat() == "2026-07-15"
    assert int(shop["Business days behind"]) == seq[latest] - seq[coverage["shop"]] == 3
    assert int(shop["Open alerts"]) == alerts.get("shop", 0)

    quiet = rows["Shopify Store (shopi)"]  # configured, nothing landed yet: still a row
    assert (quiet["Latest day"], quiet["Open discrepancies"], quiet["Refunds awaiting approval"], quiet["Business days behind"]) \
        == ("", "0", "0", "")
    assert quiet["Statements cover up to"] == "no statement data yet"

    assert len(page.records("alerts")) == sum(alerts.values())


def test_every_report_written_is_linked_by_month_latest_first(ran):
    home, _ = ran
    reports = home.path / "reports"
    page = Page((reports / INDEX_FILE).read_text(encoding="utf-8"))
    written = {p.relative_to(reports).as_posix() for p in reports.rglob("*") if p.is_file() and p.name != INDEX_FILE}
    files = {h for h in page.hrefs if not h.startswith("#")}
    assert written <= files and all((reports / h).is_file() for h in files)
    assert "daily/2026-07/shop_2026-07-20.html" in written and "month_close/2026-07/shop_2026-07_close.xlsx" in written

    dates = [row["Date"] for row in page.records("reports-2026-07")]
    assert dates[0] == "Month close"
    days = [d.split(" ")[0] for d in dates[1:]]
    assert days == sorted(days, reverse=True) and days[0] == "2026-07-20" and days[-1] == "2026-07-14"
    assert all(f"#{anchor}" in page.hrefs for anchor in page.ids if anchor.startswith("m-"))


def test_the_index_is_in_the_report_language_and_masks_personal_data(ran, tmp_path):
    home, _ = ran
    settings = load_settings(home.path)
    with connect(settings.lake) as con:
        con.execute(
            """INSERT INTO alerts (alert_id, kind, store_id, business_date, severity, message, created_at)
               VALUES ('TEST|shop|2026-07-20', 'REFUND_OVERDUE', 'shop', DATE '2026-07-20', 'warning',
                       'Refund for jose.pena@example.pe (DNI 47291836, CCI 00219312345678901234) is overdue', now())"""
        )
        try:
            page = load_index(settings, con)
        finally:
            con.execute("DELETE FROM alerts WHERE alert_id = 'TEST|shop|2026-07-20'")
    english = render_index(Catalog("en"), settings, page)
    spanish = render_index(Catalog("es"), dataclasses.replace(settings, report_language="es"), page)
    for text in (english, spanish):
        assert "j********@example.pe" in text and "*****836" in text and "*****************234" in text
        assert "jose.pena" not in text and "47291836" not in text and "00219312345678901234" not in text
    assert '<html lang="es">' in spanish and "Tiendas de un vistazo" in spanish and "Diferencias abiertas" in spanish
    assert "Stores at a glance" in english and "Tiendas" not in english


def test_the_index_is_the_same_file_when_nothing_changed(ran):
    home, _ = ran
    path = home.path / "reports" / INDEX_FILE
    before = path.read_bytes()
    definitions = build_definitions(load_settings(home.path))
    assert definitions.resolve_job_def(INDEX_JOB).execute_in_process(instance=dg.DagsterInstance.ephemeral()).success
    assert path.read_bytes() == before


def test_the_index_follows_the_reports_and_stays_out_of_the_main_job(home):
    home.orders("A1,2026-07-14 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,\n")
    home.statements("90000001,A1,,paid,PEN,10.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,\n")
    definitions = build_definitions(load_settings(home.path))
    main_assets = {k.to_user_string() for k in definitions.resolve_job_def(MAIN_JOB).asset_layer.executable_asset_keys}
    assert INDEX not in main_assets
    selection = dg.AssetSelection.assets(INDEX)
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.evaluate_automation_conditions(definitions, instance, asset_selection=selection)
        assert first.total_requested == 0
        tags = range_tags(["shop"], D("2026-07-14"), D("2026-07-14"))
        assert definitions.resolve_job_def(MAIN_JOB).execute_in_process(instance=instance, tags=tags).success
        reconciled = dg.evaluate_automation_conditions(definitions, instance, asset_selection=selection, cursor=first.cursor)
        assert reconciled.total_requested == 0  # the all-stores and month-close reports come first
        for job, run_tags in following_report_runs(definitions, ["shop"], D("2026-07-14"), D("2026-07-14")):
            assert definitions.resolve_job_def(job).execute_in_process(instance=instance, tags=run_tags).success
        reported = dg.evaluate_automation_conditions(definitions, instance, asset_selection=selection, cursor=reconciled.cursor)
        assert reported.get_num_requested(dg.AssetKey(INDEX)) == 1
        assert definitions.resolve_job_def(INDEX_JOB).execute_in_process(instance=instance).success
        settled = dg.evaluate_automation_conditions(definitions, instance, asset_selection=selection, cursor=reported.cursor)
        assert settled.total_requested == 0
    assert (home.path / "reports" / INDEX_FILE).is_file()


def test_the_index_renders_in_headless_chromium_and_every_link_opens_a_file(ran, tmp_path):
    home, _ = ran
    reports = home.path / "reports"
    browser = start_chromium(reports / INDEX_FILE, tmp_path / "profile", "--dump-dom")
    dom, log = browser.communicate(timeout=120)
    assert browser.returncode == 0, log[-3000:]
    console = [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert console == [], "the page logged to the console:\n" + "\n".join(console)

    page = Page(dom)
    assert {"stores", "alerts", "reports-2026-07"} <= page.tables.keys()
    assert len(page.hrefs) > 20
    for href in page.hrefs:
        if href.startswith("#"):
            assert href[1:] in page.ids, href
        else:
            assert not href.startswith(("/", "http:", "https:", "file:")), href  # relative: opens from any copy of the folder
            assert (reports / href).resolve().is_file(), href
