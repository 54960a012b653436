"""Finance reports: a few rows in, exact céntimos out, identical in HTML, CSV and XLSX and equal to
the warehouse. The readers below read each format back the way finance's tools would."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import duckdb
import openpyxl
import pytest

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.core.money import parse_cents
from pagorecon_dagster.reports.language import Catalog
from pagorecon_dagster.reports.window import all_stores_reports, daily_reports, month_close_reports
from pagorecon_dagster.reports.writer import write_report
from pagorecon_dagster.warehouse.duckdb import connect, home_lake
from tests.conftest import Home

FORMATS = ("html", "csv", "xlsx")


# ---------------------------------------------------------------------------------------------
# Reading reports back
# ---------------------------------------------------------------------------------------------
def money(value) -> int | None:
    """A money cell as céntimos: `'1234.50'` / `'-38.46'` (CSV, HTML) or an XLSX number."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return -parse_cents(value[1:]) if value.startswith("-") else parse_cents(value)
    cents = Decimal(str(value)) * 100
    assert cents == cents.to_integral_value(), f"{value!r} is not a whole number of céntimos"
    return int(cents)


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._key = self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._key = attrs.get("data-table")
            self.tables[self._key] = []
        elif tag == "tr" and self._key:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._key].append(self._row)
            self._row = None
        elif tag == "table":
            self._key = None


def _records(header: list, rows: list[list]) -> list[dict]:
    return [dict(zip(header, row)) for row in rows]


def read_table(path: Path, key: str, t: Catalog) -> list[dict]:
    """The rows of table `key` of a report file, as {column label: cell}."""
    if path.suffix == ".html":
        parser = _Tables()
        parser.feed(path.read_text(encoding="utf-8"))
        header, *rows = parser.tables[key]
        return _records(header, rows)
    if path.suffix == ".csv":
        blocks, block = [], []
        for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))):
            if row:
                block.append(row)
            else:
                blocks.append(block)
                block = []
        blocks.append(block)
        title = t(f"{key}_title")
        (found,) = [b for b in blocks[1:] if b[0] == [title]]
        return _records(found[1], found[2:])
    if path.suffix == ".xlsx":
        sheet_label = t("sheet_month") if key == "month_figures" else t(f"sheet_{key}")
        sheet = openpyxl.load_workbook(path)[sheet_label]
        header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
        return _records(header, [["" if v is None else v for v in r] for r in rows])  # an empty cell reads as ""
    raise ValueError(path)


def report_files(home_path: Path, relative: str) -> dict[str, Path]:
    return {fmt: home_path / "reports" / f"{relative}.{fmt}" for fmt in FORMATS}


def in_every_format(home_path: Path, relative: str, key: str, t: Catalog, project) -> dict[str, list]:
    """`project(row)` of every row of table `key`, per format."""
    return {fmt: [project(r) for r in read_table(path, key, t)] for fmt, path in report_files(home_path, relative).items()}


def assert_same_in_every_format(found: dict[str, list], expected: list) -> None:
    for fmt, rows in found.items():
        assert rows == expected, f"{fmt}: {rows} != {expected}"


# ---------------------------------------------------------------------------------------------
# The scenario: one canonical store, PEN and USD, every kind of money movement on 2026-07-14/15
# ---------------------------------------------------------------------------------------------
ORDERS = """\
A1,2026-07-14 09:00:00,paid,PEN,100.50,0.00,PagoEfectivo,,jose.pena@example.pe,47291836
A2,2026-07-14 09:10:00,pending,PEN,200.00,0.00,PagoEfectivo,,,
A3,2026-07-14 09:20:00,paid,PEN,50.00,0.00,PagoEfectivo,,,
A4,2026-07-14 09:30:00,paid,USD,30.00,0.00,PagoEfectivo,,,
A5,2026-07-14 09:40:00,pending,PEN,80.00,0.00,PagoEfectivo,,,
A6,2026-07-14 09:50:00,cancelled,PEN,60.00,0.00,PagoEfectivo,,,
A7,2026-07-14 10:00:00,pending,PEN,40.00,0.00,PagoEfectivo,,,
C1,2026-07-14 11:00:00,paid,PEN,99.00,0.00,Visa,,,
B1,2026-07-15 09:00:00,paid,PEN,10.00,0.00,PagoEfectivo,,,
B2,2026-07-15 09:10:00,pending,PEN,374.50,0.00,PagoEfectivo,,,
"""
STATEMENTS = """\
90000001,A1,,paid,PEN,100.50,3.50,0.63,2026-07-14T09:01:00-05:00,,2026-07-14T12:00:00-05:00,BCP,DNI,47291836,jose.pena@example.pe
90000002,A2,,paid,PEN,190.00,6.65,,2026-07-14T09:11:00-05:00,,2026-07-14T12:10:00-05:00,BCP,,,
90000003,A3,,paid,PEN,50.00,1.75,0.32,2026-07-14T09:21:00-05:00,,2026-07-14T12:20:00-05:00,BCP,,,
90000004,A3,,paid,PEN,50.00,1.75,0.32,2026-07-14T09:22:00-05:00,,2026-07-14T13:20:00-05:00,BCP,,,
90000005,A4,,paid,USD,30.00,1.05,0.19,2026-07-14T09:31:00-05:00,,2026-07-14T12:30:00-05:00,BCP,,,
90000006,A6,,paid,PEN,60.00,2.10,0.38,2026-07-14T09:51:00-05:00,,2026-07-14T12:50:00-05:00,BCP,,,
90000007,A7,,paid,PEN,40.00,1.40,0.25,2026-07-14T10:01:00-05:00,,2026-07-14T13:00:00-05:00,BCP,,,
90000007,A7,,reversed,PEN,40.00,,,2026-07-14T10:01:00-05:00,,2026-07-14T13:00:00-05:00,BCP,,,
90000009,ZZZ9,,paid,PEN,25.00,,,2026-07-14T14:00:00-05:00,,2026-07-14T14:05:00-05:00,BCP,,,
90000011,B1,,paid,PEN,10.00,0.35,0.06,2026-07-15T09:01:00-05:00,,2026-07-15T11:00:00-05:00,BCP,,,
90000012,B2,,paid,USD,100.00,3.50,0.63,2026-07-15T09:11:00-05:00,,2026-07-15T11:30:00-05:00,BCP,,,
"""
FX = "date,currency,buy,sell\n2026-07-14,USD,3.740,3.745\n"


def add_refund(home, refund_id="R1", cip="90000006", order_id="A6", amount_cents=6000, status="paid",
               requested_by="ana.finanzas@tienda.pe", document="47291836", account="00219312345678901234",
               requested_at="2026-07-14 15:00:00-05", completed_at="2026-07-15 10:00:00-05"):
    """A refund as the refunds feature records it (the reports only read this table)."""
    with connect(home_lake(home.path)) as con:
        con.execute((Path(__file__).parents[1] / "pagorecon_dagster/refunds/schema.sql").read_text())
        con.execute(
            """INSERT INTO refunds (refund_id, store_id, order_id, cip, amount_cents, currency, reason, source, status,
                                    requested_by, requested_at, completed_at, beneficiary_document, beneficiary_account)
               VALUES (?, 'shop', ?, ?, ?, 'PEN', 'Pedido anulado, se devuelve al pagador', 'reconciliation', ?, ?, ?::TIMESTAMPTZ,
                       ?::TIMESTAMPTZ, ?, ?)""",
            [refund_id, order_id, cip, amount_cents, status, requested_by, requested_at, completed_at, document, account],
        )


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """One run over 2026-07-14..16 for both stores; the tests below only read what it wrote."""
    home = Home(tmp_path_factory.mktemp("reports") / "home")
    home.path.mkdir()
    home.config()
    home.orders(ORDERS)
    home.statements(STATEMENTS)
    home.drop("fx/sbs.csv", FX)
    add_refund(home)
    instance = dg.DagsterInstance.ephemeral()
    home.run("2026-07-14", "2026-07-16", instance=instance)
    return home, instance


def materializations(instance: dg.DagsterInstance, asset: str) -> list[dg.AssetMaterialization]:
    return [r.asset_materialization for r in instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records]


def rendered_again(home, tmp_path: Path, build, keys, **settings_changes) -> Path:
    """The reports `build` makes from the warehouse as it is now, written under tmp_path."""
    settings = dataclasses.replace(load_settings(home.path), **settings_changes)
    with connect(settings.lake) as con:
        reports = build(settings, con, keys)
    for report in reports:
        write_report(report, tmp_path)
    return tmp_path


T_EN = Catalog("en")


def test_a_range_run_writes_one_daily_report_per_partition_and_every_date_and_month(scenario):
    home, _ = scenario
    written = sorted(str(p.relative_to(home.path / "reports")) for p in (home.path / "reports").rglob("*") if p.is_file())
    expected = sorted(
        [f"daily/2026-07/{store}_2026-07-{day}.{fmt}" for store in ("shop", "shopi") for day in (14, 15, 16) for fmt in FORMATS]
        + [f"all_stores/2026-07/all_stores_2026-07-{day}.{fmt}" for day in (14, 15, 16) for fmt in FORMATS]
        + [f"month_close/2026-07/{store}_2026-07_close.{fmt}" for store in ("shop", "shopi") for fmt in FORMATS]
    )
    assert written == expected


def test_daily_totals_by_status_and_currency_equal_the_warehouse_in_every_format(scenario):
    home, _ = scenario
    t = T_EN

    def project(r):
        return (r[t("col_currency")], r[t("col_paid_currency")] or None, r[t("col_status")], int(r[t("col_items")]),
                money(r[t("col_order_total")]), money(r[t("col_paid")]), money(r[t("col_refunded")]))

    found = in_every_format(home.path, "daily/2026-07/shop_2026-07-14", "totals", t, project)
    assert_same_in_every_format(found, [
        ("PEN", "PEN", "MATCHED", 2, 15050, 15050, 0),
        ("PEN", "PEN", "AMOUNT_MISMATCH", 1, 20000, 19000, 0),
        ("PEN", "PEN", "DUPLICATE_PAYMENT", 1, 0, 5000, 0),
        ("PEN", "PEN", "PAID_CANCELLED_ORDER", 1, 6000, 6000, 6000),
        ("PEN", "PEN", "ORPHAN_PAYMENT", 1, 0, 2500, 0),
        ("PEN", "PEN", "Total", 6, 41050, 47550, 6000),
        ("PEN", None, "REVERSED", 1, 4000, 0, 0),
        ("PEN", None, "AWAITING_PAYMENT", 1, 8000, 0, 0),
        ("PEN", None, "Total", 2, 12000, 0, 0),
        ("USD", "USD", "MATCHED", 1, 3000, 3000, 0),
        ("USD", "USD", "Total", 1, 3000, 3000, 0),
    ])
    # row for row the warehouse's own summary
    summary = home.query(
        "SELECT currency, paid_currency, status, items, order_total_cents, paid_amount_cents, refunded_cents FROM recon_daily_summary"
        " WHERE store_id = 'shop' AND business_date = DATE '2026-07-14'"
    )
    by_key = {(r["currency"], r["paid_currency"], r["status"]): r for r in summary}
    for currency, paid_currency, status, items, total, paid, refunded in found["xlsx"]:
        if status == "Total":
            continue
        row = by_key.pop((currency, paid_currency, status))
        assert (items, total, paid, refunded) == (row["items"], row["order_total_cents"], row["paid_amount_cents"], row["refunded_cents"])
    assert by_key == {}


def test_an_fx_item_counts_its_order_and_its_payment_each_in_its_own_currency(scenario):
    home, _ = scenario
    t = T_EN
    found = in_every_format(
        home.path, "daily/2026-07/shop_2026-07-15", "totals", t,
        lambda r: (r[t("col_currency")], r[t("col_paid_currency")], r[t("col_status")], int(r[t("col_items")]),
                   money(r[t("col_order_total")]), money(r[t("col_paid")])),
    )
    # the PEN order paid in USD: its PEN total and its USD payment on one row, never summed with PEN payments
    assert_same_in_every_format(found, [
        ("PEN", "PEN", "MATCHED", 1, 1000, 1000), ("PEN", "PEN", "Total", 1, 1000, 1000),
        ("PEN", "USD", "MATCHED", 1, 37450, 10000), ("PEN", "USD", "Total", 1, 37450, 10000),
    ])
    summary = home.query(
        "SELECT currency, paid_currency, status, items, order_total_cents, paid_amount_cents FROM recon_daily_summary"
        " WHERE store_id = 'shop' AND business_date = DATE '2026-07-15' ORDER BY ALL"
    )
    assert [tuple(r.values()) for r in summary] == [("PEN", "PEN", "MATCHED", 1, 1000, 1000), ("PEN", "USD", "MATCHED", 1, 37450, 10000)]


def test_a_payment_without_reference_is_listed_among_the_orphans(home):
    home.orders("A1,2026-07-14 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,\n")
    home.statements(
        "90000001,ZZ9,,paid,PEN,10.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,\n"
        "90000002,,,paid,PEN,20.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T12:00:00-05:00,BCP,,,\n"
    )
    home.run("2026-07-14", "2026-07-14")
    t = T_EN
    found = in_every_format(home.path, "daily/2026-07/shop_2026-07-14", "discrepancies", t,
                            lambda r: (r[t("col_status")], r[t("col_reason")], r[t("col_cip")], money(r[t("col_paid")])))
    assert_same_in_every_format(found, [
        ("ORPHAN_PAYMENT", "NO_REFERENCE (no reference on the CIP)", "90000002", 2000),
        ("ORPHAN_PAYMENT", "NO_ORDER (no order)", "90000001", 1000),
    ])


def test_daily_expected_net_commissions_igv_and_unknown_fees(scenario):
    home, _ = scenario
    t = T_EN
    found = in_every_format(
        home.path, "daily/2026-07/shop_2026-07-14", "net", t,
        lambda r: (r[t("col_currency")], int(r[t("col_payments")]), money(r[t("col_collected")]), money(r[t("col_commissions")]),
                   money(r[t("col_igv")]), money(r[t("col_refunds")]), money(r[t("col_net")]), int(r[t("col_unknown_fees")])),
    )
    # PEN: 475.50 collected - 15.75 commissions - 1.65 IGV - 60.00 refunded = 398.10; A2's IGV and the orphan's fees are unknown
    assert_same_in_every_format(found, [("PEN", 6, 47550, 1575, 165, 6000, 39810, 2), ("USD", 1, 3000, 105, 19, 0, 2876, 0)])
    warehouse = home.query(
        """SELECT r.paid_currency, count(*) AS payments, sum(r.paid_amount_cents) AS collected,
                  sum(coalesce(p.commission_cents, 0)) AS commissions, sum(coalesce(p.igv_cents, 0)) AS igv,
                  sum(r.refunded_cents) AS refunded
           FROM recon_items r JOIN payments p USING (store_id, cip)
           WHERE r.store_id = 'shop' AND r.business_date = DATE '2026-07-14' AND r.paid_amount_cents IS NOT NULL
           GROUP BY ALL ORDER BY 1"""
    )
    assert [tuple(r.values()) for r in warehouse] == [(c, n, col, com, igv, ref) for c, n, col, com, igv, ref, _, _ in found["csv"]]


def test_daily_discrepancies_carry_evidence_and_a_suggested_action(scenario):
    home, _ = scenario
    t = T_EN
    found = in_every_format(
        home.path, "daily/2026-07/shop_2026-07-14", "discrepancies", t,
        lambda r: (r[t("col_status")], r[t("col_order")], r[t("col_cip")], money(r[t("col_difference")]), r[t("col_action")]),
    )
    assert_same_in_every_format(found, [
        ("AMOUNT_MISMATCH", "A2", "90000002", -1000, "Ask the buyer for the missing amount, or accept the difference and adjust the order."),
        ("DUPLICATE_PAYMENT", "A3", "90000004", 5000, "Refund the duplicate payment to the payer."),
        ("PAID_CANCELLED_ORDER", "A6", "90000006", 6000, "Refunded: nothing left to refund."),
        ("ORPHAN_PAYMENT", "", "90000009", 2500, "Find the order (a reference typo?) or refund the payer."),
        ("REVERSED", "A7", "90000007", None, "The bank took the money back: hold the shipment and contact the buyer."),
    ])
    html_rows = read_table(report_files(home.path, "daily/2026-07/shop_2026-07-14")["html"], "discrepancies", t)
    evidence = html_rows[0][t("col_evidence")]
    # dates stay readable through the masking of evidence
    assert evidence.startswith("CIP 90000002 paid PEN 190.00 on 2026-07-14 12:10 Lima against the order total PEN 200.00"), evidence


def test_refunds_of_the_day_show_on_the_day_requested_and_the_day_completed_masked(scenario):
    home, _ = scenario
    t = T_EN

    def project(r):
        return (r[t("col_refund_id")], r[t("col_cip")], money(r[t("col_amount")]), r[t("col_refund_status")],
                r[t("col_requested_by")], r[t("col_beneficiary_document")], r[t("col_beneficiary_account")])

    expected = [("R1", "90000006", 6000, "paid", "a***********@tienda.pe", "*****836", "*****************234")]
    assert_same_in_every_format(in_every_format(home.path, "daily/2026-07/shop_2026-07-14", "refunds", t, project), expected)
    assert_same_in_every_format(in_every_format(home.path, "daily/2026-07/shop_2026-07-15", "refunds", t, project), expected)
    assert_same_in_every_format(in_every_format(home.path, "daily/2026-07/shop_2026-07-16", "refunds", t, project), [])


def test_all_stores_lists_every_store_with_its_totals(scenario):
    home, _ = scenario
    t = T_EN

    def project(r):
        return (r[t("store")], r[t("col_currency")], int(r[t("col_items")]), int(r[t("col_needs_action")]),
                money(r[t("col_order_total")]), money(r[t("col_collected")]), money(r[t("col_net")]))

    found = in_every_format(home.path, "all_stores/2026-07/all_stores_2026-07-14", "stores", t, project)
    assert_same_in_every_format(found, [
        ("Canonical Shop (shop)", "PEN", 8, 5, 53050, 47550, 39810),
        ("Canonical Shop (shop)", "USD", 1, 0, 3000, 3000, 2876),
        ("Shopify Store (shopi)", "", 0, 0, 0, 0, 0),
        ("Total", "PEN", 8, 5, 53050, 47550, 39810),
        ("Total", "USD", 1, 0, 3000, 3000, 2876),
    ])
    html = report_files(home.path, "all_stores/2026-07/all_stores_2026-07-14")["html"].read_text(encoding="utf-8")
    assert html.count("<svg") == 1 and html.count("<table") == 2  # the chart, the stores table and the legend


def test_month_close_figures_and_the_bridge_from_orders_to_net(scenario):
    home, _ = scenario
    t = T_EN
    relative = "month_close/2026-07/shop_2026-07_close"
    figures = in_every_format(
        home.path, relative, "month_figures", t,
        lambda r: (r[t("col_currency")], money(r[t("col_gross")]), money(r[t("col_reversals")]), money(r[t("col_commissions")]),
                   money(r[t("col_igv")]), money(r[t("col_refunds")]), money(r[t("col_month_net")])),
    )
    # PEN: 485.50 kept + 40.00 reversed (A7's extorno) = 525.50 gross
    assert_same_in_every_format(figures, [("PEN", 52550, 4000, 1610, 171, 6000, 40769), ("USD", 13000, 0, 455, 82, 0, 12463)])

    bridge = in_every_format(
        home.path, relative, "bridge", t,
        lambda r: (r[t("col_currency")], r[t("col_status")] or r[t("col_line")], money(r[t("col_effect")])),
    )
    assert_same_in_every_format(bridge, [
        ("PEN", "Sum of orders", 91500),
        ("PEN", "MATCHED", 0),
        ("PEN", "MATCHED", -37450),            # B2: a PEN order paid in USD
        ("PEN", "AMOUNT_MISMATCH", -1000),
        ("PEN", "DUPLICATE_PAYMENT", 5000),
        ("PEN", "PAID_CANCELLED_ORDER", 0),
        ("PEN", "ORPHAN_PAYMENT", 2500),
        ("PEN", "REVERSED", -4000),
        ("PEN", "AWAITING_PAYMENT", -8000),
        ("PEN", "Commissions", -1610),
        ("PEN", "IGV", -171),
        ("PEN", "Refunds paid", -6000),
        ("PEN", "Net", 40769),
        ("USD", "Sum of orders", 3000),
        ("USD", "MATCHED", 0),
        ("USD", "MATCHED", 10000),             # B2's USD payment
        ("USD", "Commissions", -455),
        ("USD", "IGV", -82),
        ("USD", "Refunds paid", 0),
        ("USD", "Net", 12463),
    ])
    for currency in ("PEN", "USD"):
        steps = [amount for c, _, amount in bridge["xlsx"] if c == currency]
        assert sum(steps[:-1]) == steps[-1]  # the sum of orders and every step add up to the net
    orders = home.query(
        "SELECT currency, sum(total_cents) AS total FROM orders WHERE store_id = 'shop' AND is_pagoefectivo GROUP BY ALL ORDER BY 1"
    )
    assert [(r["currency"], r["total"]) for r in orders] == [("PEN", 91500), ("USD", 3000)]


def test_month_close_open_items_are_aged_as_of_the_statements_not_the_clock(scenario):
    home, _ = scenario
    t = T_EN
    relative = "month_close/2026-07/shop_2026-07_close"
    aging = in_every_format(
        home.path, relative, "aging", t,
        lambda r: (r[t("col_currency")], r[t("col_bucket")], int(r[t("col_items")]), money(r[t("col_open_amount")])),
    )
    # open: A2 (10.00 to collect), the duplicate (50.00) and orphan (25.00) to refund, A7 reversed, A5 awaiting;
    # A6 is refunded in full. The statements reach 2026-07-15: one business day after the 14th.
    assert_same_in_every_format(aging, [("PEN", "0-2", 5, 20500), ("PEN", "3-7", 0, 0), ("PEN", "8-30", 0, 0),
                                        ("PEN", ">30", 0, 0), ("PEN", "Total", 5, 20500)])
    html = report_files(home.path, relative)["html"].read_text(encoding="utf-8")
    assert "2026-07-15 (latest statement data for this store)" in html


def test_reports_are_the_same_bytes_when_rendered_again_over_the_same_data(scenario, tmp_path):
    home, _ = scenario
    days = [dt.date(2026, 7, day) for day in (14, 15, 16)]
    store_days = [(store, day) for store in ("shop", "shopi") for day in days]
    store_months = [(store, dt.date(2026, 7, 1)) for store in ("shop", "shopi")]
    for build, keys in ((daily_reports, store_days), (all_stores_reports, days), (month_close_reports, store_months)):
        rendered_again(home, tmp_path, build, keys)
    again = sorted(p for p in tmp_path.rglob("*") if p.suffix in (".html", ".csv", ".xlsx"))
    assert len(again) == 33
    for path in again:
        assert path.read_bytes() == (home.path / "reports" / path.relative_to(tmp_path)).read_bytes(), path


def test_xlsx_money_is_an_exact_number_with_two_decimals(scenario):
    home, _ = scenario
    sheet = openpyxl.load_workbook(report_files(home.path, "daily/2026-07/shop_2026-07-14")["xlsx"])["Net"]
    header = [c.value for c in sheet[1]]
    cell = sheet.cell(row=2, column=header.index("Expected net") + 1)
    assert (cell.data_type, cell.number_format, cell.value) == ("n", "0.00", 398.1)
    raw = openpyxl.load_workbook(report_files(home.path, "daily/2026-07/shop_2026-07-14")["xlsx"], read_only=True)
    assert raw.sheetnames == ["Report", "Net", "Totals", "Discrepancies", "Payments", "Refunds", "Legend"]


def test_materialization_lists_the_written_paths_and_a_markdown_summary(scenario):
    home, instance = scenario
    for materialization in materializations(instance, "daily_store_report"):
        metadata = materialization.metadata
        assert metadata["reports"] == dg.MetadataValue.int(6)
        assert metadata["folder"] == dg.MetadataValue.path(str(home.path / "reports/daily"))
        assert isinstance(metadata["summary"], dg.MarkdownMetadataValue)
        lines = metadata["summary"].value.splitlines()
        assert len(lines) == 2 + 6
        assert lines[2] == (
            "| `shop` 2026-07-14: 9 items, 5 discrepancies; net PEN 398.10, USD 28.76 | `daily/2026-07/shop_2026-07-14.html` "
            "`daily/2026-07/shop_2026-07-14.csv` `daily/2026-07/shop_2026-07-14.xlsx` |"
        )
    (close, *_) = materializations(instance, "month_close_report")
    assert "`shop` 2026-07 close: 11 items, 5 open; net PEN 407.69, USD 124.63" in close.metadata["summary"].value


def test_spanish_reports_name_and_explain_statuses_in_spanish(scenario, tmp_path):
    home, _ = scenario
    rendered_again(home, tmp_path, daily_reports, [("shop", dt.date(2026, 7, 14))], report_language="es")
    t = Catalog("es")
    files = {fmt: tmp_path / f"daily/2026-07/shop_2026-07-14.{fmt}" for fmt in FORMATS}
    totals = read_table(files["csv"], "totals", t)
    assert (totals[0]["Moneda"], totals[0]["Estado"], totals[0]["Nombre"], totals[0]["Partidas"]) == ("PEN", "MATCHED", "Conciliado", "2")
    html = files["html"].read_text(encoding="utf-8")
    assert '<html lang="es">' in html and "Conciliación diaria: Canonical Shop (shop) — 2026-07-14" in html
    assert "2026-07-14 (martes)" in html and "Qué significa cada estado" in html and "Neto esperado por moneda" in html
    assert "El banco revirtió (extornó) el único pago del pedido" in html
    discrepancies = read_table(files["csv"], "discrepancies", t)
    assert discrepancies and all(row["Evidencia"].startswith(("El ", "La ", "Ningún ")) for row in discrepancies)
    assert "se pagó y luego se extornó; ningún otro CIP está pagado." in html
    assert openpyxl.load_workbook(files["xlsx"]).sheetnames[:3] == ["Reporte", "Neto", "Totales"]


def test_a_day_with_nothing_still_gets_its_report(scenario):
    home, _ = scenario
    t = T_EN
    found = in_every_format(home.path, "daily/2026-07/shopi_2026-07-14", "totals", t, lambda r: r)
    assert found == {"html": [], "csv": [], "xlsx": []}
    html = report_files(home.path, "daily/2026-07/shopi_2026-07-14")["html"].read_text(encoding="utf-8")
    assert "no statement data yet" in html and "None." in html


def _cells(path: Path) -> list[tuple]:
    """Every cell of every sheet as a reader sees it: value, type, number format, bold, size."""
    book = openpyxl.load_workbook(path)
    return [(sheet.title, sheet.freeze_panes, sheet.auto_filter.ref)
            + tuple((c.coordinate, c.value, c.data_type, c.number_format, bool(c.font.b), c.font.sz or 11)
                    for row in sheet.iter_rows() for c in row if c.value is not None)
            for sheet in book.worksheets]


def test_a_big_report_streamed_through_temporary_files_reads_like_one_built_in_memory(scenario, tmp_path, monkeypatch):
    """A workbook above STREAMED_CELLS table cells streams each sheet's rows (memory stays small
    on a big day); below, it is built in memory. Readers see the same cells, the same bytes twice."""
    from pagorecon_dagster.reports import spreadsheet

    home, _ = scenario
    settings = load_settings(home.path)
    with connect(settings.lake) as con:
        (report,) = month_close_reports(settings, con, [("shop", dt.date(2026, 7, 1))])
    written = {}
    for label, limit in (("in memory", 10**9), ("streamed", 0), ("streamed again", 0)):
        monkeypatch.setattr(spreadsheet, "STREAMED_CELLS", limit)
        written[label] = tmp_path / f"{label}.xlsx"
        spreadsheet.write_xlsx(report, written[label])
    assert _cells(written["streamed"]) == _cells(written["in memory"])
    assert written["streamed"].read_bytes() == written["streamed again"].read_bytes()
    title = openpyxl.load_workbook(written["streamed"]).worksheets[0]["A1"]
    assert (title.value, title.font.b, title.font.sz) == (report.title, True, 14)
    money = [c for sheet in _cells(written["streamed"]) for c in sheet[3:] if c[3] == "0.00"]
    assert money and all(isinstance(c[1], (int, float)) for c in money)
