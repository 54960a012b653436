"""Reports are spreadsheet-safe and masked: a formula in an order field arrives inert in CSV and
XLSX, and no email, document number or account number appears in any report file."""

import csv
import io
import re
import zipfile

import openpyxl
import pytest

from pagorecon_dagster.reports.safety import FORMULA_TRIGGERS, inert, mask_free_text
from tests.test_reports import add_refund

HYPERLINK = '=HYPERLINK("http://x","y")'
PAYLOADS = (HYPERLINK, "+SUM(1+1)", "-2+3", "@SUM(A1)")
SECRETS = (
    "jose.pena@example.pe", "luis.rojas@gmail.com", "maria.quispe@correo.pe", "ana.finanzas@tienda.pe",
    "47291836", "55667788", "00219312345678901234", "jose.pena", "luis.rojas", "maria.quispe",
)
ORDERS = """\
"=HYPERLINK(""http://x"",""y"")",2026-07-14 09:00:00,pending,PEN,100.00,0.00,PagoEfectivo,,jose.pena@example.pe,47291836
+SUM(1+1),2026-07-14 09:05:00,pending,PEN,20.00,0.00,PagoEfectivo,,jose.pena@example.pe,47291836
-2+3,2026-07-14 09:10:00,cancelled,PEN,20.00,0.00,PagoEfectivo,,,
@SUM(A1),2026-07-14 09:15:00,pending,PEN,20.00,0.00,PagoEfectivo,,,
luis.rojas@gmail.com,2026-07-14 09:20:00,paid,PEN,30.00,0.00,PagoEfectivo,,luis.rojas@gmail.com,47291836
"""
STATEMENTS = """\
90000001,"=HYPERLINK(""http://x"",""y"")",,paid,PEN,90.00,3.15,0.57,2026-07-14T09:01:00-05:00,,2026-07-14T12:00:00-05:00,BCP,DNI,55667788,maria.quispe@correo.pe
90000002,-2+3,,paid,PEN,20.00,0.70,0.13,2026-07-14T09:11:00-05:00,,2026-07-14T12:10:00-05:00,BCP,DNI,55667788,maria.quispe@correo.pe
90000003,luis.rojas@gmail.com,,paid,PEN,30.00,1.05,0.19,2026-07-14T09:21:00-05:00,,2026-07-14T12:20:00-05:00,BCP,DNI,47291836,luis.rojas@gmail.com
90000004,luis.rojas@gmail.com,,paid,PEN,30.00,1.05,0.19,2026-07-14T09:22:00-05:00,,2026-07-14T13:20:00-05:00,BCP,DNI,47291836,luis.rojas@gmail.com
90000005,maria.quispe@correo.pe 00219312345678901234,,paid,PEN,15.00,,,2026-07-14T14:00:00-05:00,,2026-07-14T14:05:00-05:00,Agente,DNI,55667788,maria.quispe@correo.pe
"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    from tests.conftest import Home

    home = Home(tmp_path_factory.mktemp("safety") / "home")
    home.path.mkdir()
    home.config()
    home.orders(ORDERS)
    home.statements(STATEMENTS)
    add_refund(home, cip="90000002", order_id="-2+3", amount_cents=2000)
    home.run("2026-07-14", "2026-07-14")
    files = sorted(p for p in (home.path / "reports").rglob("*") if p.is_file())
    assert {p.suffix for p in files} == {".html", ".csv", ".xlsx"} and len(files) == 2 * 3 + 3 + 2 * 3
    return home, files


def test_the_payloads_reach_the_reports_as_order_ids(reports):
    home, _ = reports
    order_ids = {r["order_id"] for r in home.query("SELECT order_id FROM recon_items")}
    assert set(PAYLOADS) <= order_ids


def test_a_formula_in_an_order_field_arrives_inert_in_csv(reports):
    _, files = reports
    cells = [cell for path in files if path.suffix == ".csv"
             for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))) for cell in row]
    for cell in cells:
        if cell.startswith("-"):
            assert re.fullmatch(r"-\d+\.\d{2}", cell), f"text cell starting with '-' not neutralized: {cell!r}"
        else:
            assert not cell.startswith(FORMULA_TRIGGERS), f"CSV cell a spreadsheet would execute: {cell!r}"
    for payload in PAYLOADS:
        assert "'" + payload in cells, payload
    assert HYPERLINK not in cells


def test_a_formula_in_an_order_field_arrives_inert_in_xlsx(reports):
    _, files = reports
    seen = []
    for path in (p for p in files if p.suffix == ".xlsx"):
        with zipfile.ZipFile(path) as package:
            for name in package.namelist():
                assert b"<f>" not in package.read(name) and b"<f " not in package.read(name), f"{path.name}:{name} holds a formula"
        for sheet in openpyxl.load_workbook(path).worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (path.name, sheet.title, cell.coordinate, cell.value)
                    if isinstance(cell.value, str):
                        assert cell.data_type == "s"
                        assert not cell.value.startswith(FORMULA_TRIGGERS), (path.name, sheet.title, cell.coordinate, cell.value)
                        seen.append(cell.value)
    for payload in PAYLOADS:
        assert "'" + payload in seen, payload


def test_no_email_document_or_account_number_appears_in_any_report(reports):
    home, files = reports
    for path in files:
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as package:
                text = "".join(package.read(name).decode("utf-8") for name in package.namelist())
        else:
            text = path.read_text(encoding="utf-8-sig")
        for secret in SECRETS:
            assert secret not in text, f"{path.relative_to(home.path)} shows {secret!r}"
    daily = (home.path / "reports/daily/2026-07/shop_2026-07-14.html").read_text(encoding="utf-8")
    # masked, not dropped: finance still sees whose it is in part
    assert "l*********@gmail.com" in daily  # the order id that is an email, in its column and in the evidence
    assert "*****836" in daily and "*****************234" in daily  # refund beneficiary's document and account
    assert "a***********@tienda.pe" in daily  # who requested the refund


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1+1", "@SUM(A1)", "\tTAB", "\rCR", "\x01=1+1"])
def test_inert_neutralizes_every_formula_trigger(text):
    result = inert(text)
    assert result.startswith("'") and not result[1:].startswith("\x01")


@pytest.mark.parametrize("text", ["Pedido 1001", "'already quoted", "", "1234.50"])
def test_inert_leaves_plain_text_alone(text):
    assert inert(text) == text


def test_evidence_masking_keeps_dates_and_masks_what_is_personal():
    evidence = ("CIP 90000002 paid PEN 190.00 on 2026-07-14 12:10 Lima; statements cover up to 2026-07-16. "
                "Buyer ana@example.pe, phone 987654321, CCI 00219312345678901234, 2026-07-16.x@evil.pe")
    assert mask_free_text(evidence) == (
        "CIP 90000002 paid PEN 190.00 on 2026-07-14 12:10 Lima; statements cover up to 2026-07-16. "
        "Buyer a***@example.pe, phone ******321, CCI *****************234, 2***********@evil.pe"
    )
