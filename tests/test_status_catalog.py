"""Statuses and reasons are defined once (reconciliation/catalog.py): the warehouse's
`status_catalog` is seeded from it, the SQL models join it, and the reports read it. Changing the
catalog alone changes the proposed refunds, the figures and the reports."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.reconciliation import catalog, evidence_catalog
from pagorecon_dagster.reports import language
from pagorecon_dagster.reports.data import Item, load_items
from pagorecon_dagster.reports.figures import is_refunded, open_amount
from pagorecon_dagster.warehouse.duckdb import SQL_DIR, connect
from tests.conftest import Home

def seeded(home: Home) -> list[tuple]:
    with connect(load_settings(home.path).lake) as con:
        return con.execute("SELECT * FROM status_catalog").fetchall()


def same_rows(found: list[tuple], expected: list[tuple]) -> bool:
    return len(found) == len(expected) and set(found) == set(expected)


def test_the_seeded_table_equals_the_catalog_and_seeding_again_changes_nothing(home):
    assert same_rows(seeded(home), catalog.rows())
    assert same_rows(seeded(home), catalog.rows())  # a second open neither duplicates nor loses a row
    pairs = [(r[0], r[1]) for r in catalog.rows()]
    assert len(pairs) == len(set(pairs))


def test_a_changed_catalog_is_seeded_again_at_the_next_open(home, monkeypatch):
    seeded(home)
    matched = catalog.STATUSES[0]
    monkeypatch.setattr(catalog, "STATUSES", (dataclasses.replace(matched, label={**matched.label, "es": "Cuadrado"}),
                                              *catalog.STATUSES[1:]))
    assert {r[0]: r[catalog_column("label_es")] for r in seeded(home)}["MATCHED"] == "Cuadrado"
    assert same_rows(seeded(home), catalog.rows())


def catalog_column(name: str) -> int:
    return [n for n, _ in catalog.COLUMNS].index(name)


# Codes the reconciliation model writes into `status` or `reason` (not currencies, not evidence).
CODE = re.compile(r"(?:\b(?:THEN|WHEN|ELSE)\s+|\bstatus\s*(?:=|<>)\s*)'([A-Z][A-Z_]+)'|'([A-Z][A-Z_]+)'\s+AS\s+(?:status|reason)\b")


def test_every_status_and_reason_the_sql_can_write_is_in_the_catalog_and_back():
    sql = (SQL_DIR / "recon_item_rows.sql").read_text(encoding="utf-8")
    # Evidence codes (reconciliation/evidence_catalog.py) are written beside the status, not as one.
    written = {a or b for a, b in CODE.findall(sql)} - {"PEN", "USD"}
    statuses = set(catalog.status_codes())
    reasons = {r.code for s in catalog.STATUSES for r in s.reasons if r.code}
    assert written - statuses - reasons - set(evidence_catalog.MESSAGES) == set()
    assert statuses | reasons <= written  # nothing in the catalog the model never writes


def test_every_status_has_its_words_in_every_report_language():
    for status in catalog.STATUSES:
        assert status.group in catalog.GROUPS
        for lang in language.LANGUAGES:
            assert status.label[lang] and status.meaning[lang], (status.code, lang)
        for reason in status.reasons:
            assert reason.code is None or all(catalog.reason_label(reason.code, lang) for lang in language.LANGUAGES)
    known = set(catalog.status_codes()) | {"REFUNDED"}  # REFUNDED: the action once a refund is paid
    for lang in language.LANGUAGES:
        assert {status for status, _ in language.ACTIONS[lang]} <= known


def item_for(status: str, reason: str | None, refund_candidate: bool, *, refunded: bool) -> Item:
    """A paid item of that status, refunded in full when `refunded`."""
    amount = 1000
    return Item("shop", dt.date(2026, 7, 14), "A1", "A1", "90000001", status, reason, "PEN", 800, "PEN", amount, 200,
                refund_candidate, 200 if refunded else 0, None, None, None, None, None)


# Matched and closed items are settled: nothing to refund whatever their amounts.
UNSETTLED = [r for r in catalog.rows() if catalog.group_of(r[0]) not in (catalog.MATCHED, catalog.CLOSED)]


@pytest.mark.parametrize("row", UNSETTLED, ids=lambda r: f"{r[0]}-{r[1]}")
def test_figures_count_as_refunded_exactly_the_catalogs_refund_candidates(row):
    status, reason, candidate = row[0], row[1], row[catalog_column("refund_candidate")]
    assert is_refunded(item_for(status, reason, candidate, refunded=True)) is candidate


def test_a_refunded_payment_without_order_is_not_counted_as_a_refund_a_person_still_decides():
    orphan = dataclasses.replace(item_for("ORPHAN_PAYMENT", "NO_ORDER", False, refunded=True),
                                 order_currency=None, order_total_cents=None, difference_cents=1000, refunded_cents=1000)
    assert (is_refunded(orphan), open_amount(orphan)) == (False, None)


def test_changing_the_catalog_alone_changes_proposed_refunds_figures_and_reports(home, monkeypatch):
    """The payment without order becomes a refund candidate and is renamed, in the catalog only."""
    statuses = []
    for status in catalog.STATUSES:
        if status.code == "ORPHAN_PAYMENT":
            reasons = tuple(dataclasses.replace(r, refund_candidate=True) if r.code == "NO_ORDER" else r for r in status.reasons)
            status = dataclasses.replace(status, reasons=reasons, label={**status.label, "en": "Stray payment"})
        statuses.append(status)
    monkeypatch.setattr(catalog, "STATUSES", tuple(statuses))

    home.orders("A1,2026-07-14 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,\n")
    home.statements(
        "90000001,NOPE-9,,paid,PEN,10.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,DNI,41111111,\n"
        "90000002,A1,,paid,PEN,50.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T12:00:00-05:00,BCP,DNI,42222222,\n"
    )
    home.run("2026-07-14", "2026-07-14")

    refunds = home.query("SELECT refund_id, cip, reason, amount_cents, currency, source FROM refunds")
    assert refunds == [{"refund_id": "auto-shop-90000001-no_order", "cip": "90000001", "reason": "NO_ORDER",
                        "amount_cents": 1000, "currency": "PEN", "source": "reconciliation"}]
    with connect(load_settings(home.path).lake) as con:
        items = {i.cip: i for i in load_items(con, ["shop"], dt.date(2026, 7, 14), dt.date(2026, 7, 14))}
    assert (items["90000001"].refund_candidate, items["90000002"].refund_candidate) == (True, False)
    assert is_refunded(dataclasses.replace(items["90000001"], refunded_cents=1000))
    daily = (home.path / "reports" / "daily" / "2026-07" / "shop_2026-07-14.csv").read_text(encoding="utf-8")
    assert "Stray payment" in daily and "Payment without order" not in daily
