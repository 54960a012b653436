"""Evidence is a message code and its values: one catalog renders the English `evidence` column
and every report language, so they cannot drift apart."""

from __future__ import annotations

import json
import re
from string import Formatter

import duckdb
import pytest

from conftest import load_sandbox
from pagorecon_dagster.reconciliation import evidence_catalog
from pagorecon_dagster.reconciliation.evidence_catalog import ADDENDA, LANGUAGES, MESSAGES, render
from pagorecon_dagster.reconciliation.models import Window, reconcile
from pagorecon_dagster.reports.evidence import evidence_in
from pagorecon_dagster.warehouse import duckdb as warehouse
from pagorecon_dagster.warehouse.duckdb import connect, home_lake

ENGLISH = re.compile(r"\b(paid|order|the|is|and|of|on|reference|statements?|unknown|yet)\b")
DIGITS = re.compile(r"\d+(?:\.\d+)?")


def sample_args(template: str) -> dict[str, object]:
    """A distinct value for every value of a template (a status word where one is translated)."""
    args: dict[str, object] = {}
    for n, (_, name, kind, _) in enumerate(Formatter().parse(template)):
        if name is None:
            continue
        args[name] = {"order_status": "cancelled", "cip_status": "expired",
                      "cip_list": [{"cip": "50000001", "status": "paid"}, {"cip": "50000002", "status": "deleted"}]
                      }.get(kind, f"V{n}")
    return args


def all_args(code: str) -> dict[str, object]:
    return {**sample_args(MESSAGES[code]["en"]), **{k: v for a in ADDENDA.values() for k, v in sample_args(a["en"]).items()}}


def assert_spanish(english: str, spanish: str) -> None:
    assert spanish != english
    assert DIGITS.findall(spanish) == DIGITS.findall(english), (english, spanish)  # same numbers, same order
    assert not ENGLISH.search(spanish.replace("DUPLICATE_PAYMENT", "")), spanish


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_every_code_renders_in_every_language_and_the_sql_writes_the_english(code):
    args = all_args(code)
    with duckdb.connect() as con:
        con.execute(evidence_catalog.macro_sql())
        sql_english = con.execute("SELECT evidence_en(?, ?::JSON)", [code, json.dumps(args)]).fetchone()[0]
    rendered = {language: render(code, args, language) for language in LANGUAGES}
    assert rendered["en"] == sql_english
    for language, text in rendered.items():
        assert "{" not in text and "None" not in text, (language, text)
        for value in (v for v in args.values() if isinstance(v, str) and v.startswith("V")):
            assert value in text, (language, value, text)
    assert_spanish(rendered["en"], rendered["es"])


def test_missing_values_are_named_in_each_language():
    args = {"status": "paid", "grace_day": None, "coverage": None}
    assert render("WITHIN_GRACE", args, "en") == (
        "The store marks the order paid but no CIP is paid yet; grace until ?, statements cover up to no statement yet.")
    assert render("WITHIN_GRACE", args, "es") == (
        "La tienda marca el pedido como pagado pero aún no hay ningún CIP pagado; plazo de gracia hasta el ?, "
        "los estados de cuenta llegan hasta aún sin estado de cuenta.")
    with pytest.raises(ValueError, match="not in the catalog"):
        render("SOMETHING_NEW", {}, "es")


def test_a_generated_sandbox_renders_every_item_from_its_code_as_the_column_says(tmp_path):
    sandbox, settings = load_sandbox(tmp_path, stores=3, days=21)
    with connect(settings.lake) as con:
        reconcile(con, settings, Window(tuple(sandbox.store_ids), sandbox.start, sandbox.end))
        rows = con.execute("SELECT evidence_code, evidence_args, evidence FROM recon_items").fetchall()
        plain_stored = con.execute("SELECT count(*) FROM recon_item_rows WHERE evidence_args IS NULL").fetchone()[0]
    assert len(rows) > 500 and plain_stored > len(rows) / 2  # plain matches store no values
    codes = {code for code, _, _ in rows}
    assert {"PAID_IN_FULL", "PAID_AGAIN", "NO_ORDER", "CIP_PENDING", "UNDERPAID", "OVERPAID"} <= codes, codes
    assert codes <= set(MESSAGES)
    for code, args, english in rows:
        assert render(code, args, "en") == english
        assert_spanish(english, evidence_in("es", code, args, english))


def test_the_rarer_messages_in_spanish(home):
    home.orders(
        """\
        A1,2026-07-14 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,
        A2,2026-07-14 10:00:00,paid,PEN,60.00,0.00,PagoEfectivo,,,
        B1,2026-07-14 11:00:00,pending,PEN,70.00,0.00,PagoEfectivo,,,
        b1,2026-07-14 12:00:00,pending,PEN,70.00,0.00,PagoEfectivo,,,
        C1,2026-07-14 12:00:00,pending,USD,20.00,0.00,PagoEfectivo,,,
        """
    )
    home.statements(
        "90000001,B1,,paid,PEN,70.00,,,2026-07-14T11:00:00-05:00,,2026-07-14T11:30:00-05:00,BCP,,,\n"
        "90000002,C1,,paid,PEN,74.00,,,2026-07-14T12:00:00-05:00,,2026-07-14T12:30:00-05:00,BCP,,,\n"
    )
    home.run("2026-07-14", "2026-07-14")
    rows = home.query("SELECT order_id, evidence_code, evidence_args, evidence FROM recon_items")
    spanish = {r["order_id"]: evidence_in("es", r["evidence_code"], r["evidence_args"], r["evidence"]) for r in rows}
    assert spanish["A1"] == "Ningún CIP de la referencia A1 aparece aún en los estados de cuenta."
    assert spanish["A2"].startswith("La tienda marca el pedido como pagado pero aún no hay ningún CIP pagado; plazo de gracia hasta el 2026-07-16")
    assert spanish["b1"] == "La referencia B1 la comparte el pedido B1, que se queda con sus CIP; este pedido no se concilia."
    assert spanish["C1"] == (
        "El CIP 90000002 pagó PEN 74.00 el 2026-07-14 12:30 Lima por un pedido en USD de USD 20.00; "
        "no se conoce tipo de cambio SBS del 2026-07-14 ni de antes."
    )
    # a row of an earlier version, with its English text and no code, is shown as it was written
    assert evidence_in("es", None, None, "A sentence from an older version.") == "A sentence from an older version."
    assert evidence_in("es", None, None, None) is None


def test_changing_an_english_template_changes_the_column_and_the_english_report_in_step(home, monkeypatch):
    home.orders("A1,2026-07-14 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,\nB1,2026-07-14 10:00:00,pending,PEN,20.00,0.00,PagoEfectivo,,,\n")
    home.statements("90000001,A1,,paid,PEN,10.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,\n"
                    "90000002,B1,,paid,PEN,25.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,\n")
    home.run("2026-07-14", "2026-07-14")
    monkeypatch.setitem(MESSAGES, "PAID_IN_FULL", {**MESSAGES["PAID_IN_FULL"], "en": "Paid in full: {paid} by CIP {cip}."})
    monkeypatch.setitem(MESSAGES, "OVERPAID", {**MESSAGES["OVERPAID"], "en": "Overpaid: {gap} more than {total}."})
    warehouse.schema_sql.cache_clear()
    try:
        with connect(home_lake(home.path)) as con:  # the new schema version brings the new macros
            rows = con.execute("SELECT order_id, evidence, evidence_code, evidence_args FROM recon_items ORDER BY order_id").fetchall()
    finally:
        warehouse.schema_sql.cache_clear()
    assert [(order, english) for order, english, _, _ in rows] == [
        ("A1", "Paid in full: PEN 10.00 by CIP 90000001."), ("B1", "Overpaid: PEN 5.00 more than PEN 20.00.")]
    for _, english, code, args in rows:
        assert evidence_in("en", code, args, english) == english


def test_a_spanish_report_shows_spanish_evidence_for_every_code_and_an_english_one_the_column():
    import datetime as dt

    from pagorecon_dagster.reports.daily import discrepancies_table
    from pagorecon_dagster.reports.data import Item
    from pagorecon_dagster.reports.language import Catalog

    def item(code: str | None, args: str | None, evidence: str) -> Item:
        return Item("shop", dt.date(2026, 7, 14), "A1", "A1", code, "AMOUNT_MISMATCH", "OVERPAID", "PEN", 1000, "PEN", 1100,
                    100, True, 0, evidence, None, None, code, args)

    items = [item(code, json.dumps(all_args(code)), render(code, all_args(code), "en")) for code in sorted(MESSAGES)]
    items.append(item(None, None, "A sentence from an older version."))
    for language in LANGUAGES:
        table = discrepancies_table(Catalog(language), items)
        shown = {row[3]: row[-1] for row in table.rows}  # by the CIP column, which holds the code here
        assert len(shown) == len(MESSAGES) + 1
        assert shown[None] == "A sentence from an older version."
        for i in items[:-1]:
            assert shown[i.evidence_code] == (i.evidence if language == "en" else render(i.evidence_code, i.evidence_args, "es"))
            if language == "es":
                assert_spanish(i.evidence, shown[i.evidence_code])
