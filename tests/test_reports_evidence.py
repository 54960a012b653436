"""Spanish reports give the evidence in Spanish: every shape the reconciliation writes is read and
written again with its numbers, dates and identifiers; anything else stays English, whole."""

from __future__ import annotations

import re

from conftest import load_sandbox
from pagorecon_dagster.reconciliation.models import Window, reconcile
from pagorecon_dagster.reports.evidence import evidence_in
from pagorecon_dagster.warehouse.duckdb import connect

ENGLISH = re.compile(r"\b(paid|order|the|is|and|of|on|reference|statements?)\b")
DIGITS = re.compile(r"\d+(?:\.\d+)?")


def assert_translated(evidence: str) -> str:
    spanish = evidence_in("es", evidence)
    assert spanish != evidence, evidence
    # the same numbers, dates and identifiers, in the same order
    assert DIGITS.findall(spanish) == DIGITS.findall(evidence), (evidence, spanish)
    assert not ENGLISH.search(re.sub(r"DUPLICATE_PAYMENT", "", spanish)), spanish
    return spanish


def test_every_evidence_of_a_generated_sandbox_reads_in_spanish(tmp_path):
    sandbox, settings = load_sandbox(tmp_path, stores=3, days=21)
    with connect(settings.warehouse_path) as con:
        reconcile(con, settings, Window(tuple(sandbox.store_ids), sandbox.start, sandbox.end))
        evidence = [e for (e,) in con.execute("SELECT DISTINCT evidence FROM recon_items ORDER BY 1").fetchall()]
    assert len(evidence) > 500
    for text in evidence:
        assert_translated(text)


def test_the_rarer_shapes_and_what_is_not_known(home):
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
    evidence = {item["order_id"]: item["evidence"] for item in home.items()}
    spanish = {order: assert_translated(text) for order, text in evidence.items()}
    assert spanish["A1"] == "Ningún CIP de la referencia A1 aparece aún en los estados de cuenta."
    assert spanish["A2"].startswith("La tienda marca el pedido como pagado pero aún no hay ningún CIP pagado; plazo de gracia hasta el 2026-07-16")
    assert spanish["b1"] == "La referencia B1 la comparte el pedido B1, que se queda con sus CIP; este pedido no se concilia."
    assert spanish["C1"] == (
        "El CIP 90000002 pagó PEN 74.00 el 2026-07-14 12:30 Lima por un pedido en USD de USD 20.00; "
        "no se conoce tipo de cambio SBS del 2026-07-14 ni de antes."
    )

    known = evidence["A1"]
    assert evidence_in("es", known + " Something new.") == known + " Something new."
    assert evidence_in("es", "A sentence from an older version.") == "A sentence from an older version."
    assert evidence_in("en", known) == known and evidence_in("es", None) is None
