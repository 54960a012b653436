"""`order_format: mapped`: a store's own export (PrestaShop, Magento 2, a home-made shop) read
through its `columns` block, validated as canonical orders, bad values quarantined, and a bad
block explained by key. The worked examples are the docs' own files."""

from __future__ import annotations

import copy
import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
import yaml

from pagorecon_dagster.cli import main as pagorecon
from pagorecon_dagster.config import ConfigError, parse_config
from pagorecon_dagster.sandbox.generator import MAPPED_SPEC, PRESTASHOP_COLUMNS, generate, plan_sandbox

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "mapped"


def example_store(name: str) -> dict:
    """The store of docs/examples/<name>.yaml, as an operator would paste it."""
    return yaml.safe_load((REPO / "docs" / "examples" / f"{name}.yaml").read_text(encoding="utf-8"))["stores"][0]


def paid(cip: str, code: str, amount: str, currency: str = "PEN", at: str = "2026-07-14T19:45:00-05:00") -> str:
    return f"{cip},{code},,paid,{currency},{amount},,,2026-07-14T10:30:00-05:00,,{at},BCP,DNI,45678123,\n"


def statuses(home, store: str) -> list[tuple]:
    return [(i["order_id"], i["status"], i["reason"], i["order_currency"], i["order_total_cents"], str(i["business_date"]))
            for i in home.items(store)]


def test_a_prestashop_export_ingests_and_reconciles(home):
    store = example_store("prestashop")
    home.config(stores=[store])
    # As PrestaShop writes it, re-saved by Excel on Windows: `;`, every field quoted, CRLF, Latin-1.
    raw = (FIXTURES / "prestashop_orders_2026-07-14.csv").read_bytes()
    assert b"\r\n" in raw and "Peña".encode("cp1252") in raw
    home.drop("orders/piura_presta/orders_export_2026-07-14.csv", raw)
    home.statements(
        paid("91000001", "xkbknabjk", "120.00")            # sent lower-case: still the same reference
        + paid("91000002", "OHSATSERP", "80.00")
        + paid("91000005", "KHWLILZLL", "45.00", "USD", "2026-07-14T22:10:00-05:00"),
        store="piura_presta",
    )
    home.run("2026-07-14", "2026-07-14")

    assert statuses(home, "piura_presta") == [
        ("KHWLILZLL", "MATCHED", None, "USD", 4500, "2026-07-14"),   # 20:15 Lima is still the 14th
        ("OHSATSERP", "AMOUNT_MISMATCH", "UNDERPAID", "PEN", 8990, "2026-07-14"),
        ("UOYEVOLIK", "CANCELLED_UNPAID", None, "PEN", 5450, "2026-07-14"),
        ("XKBKNABJK", "MATCHED", None, "PEN", 12000, "2026-07-14"),
    ]
    orders = home.query("SELECT order_id, source_order_id, status, store_status, payment_method, is_pagoefectivo "
                        "FROM orders WHERE store_id = 'piura_presta' ORDER BY source_order_id")
    assert [tuple(o.values()) for o in orders] == [
        ("XKBKNABJK", "101", "paid", "Pago aceptado", "PagoEfectivo", True),
        ("OHSATSERP", "102", "pending", "En espera de pago PagoEfectivo", "PagoEfectivo", True),
        ("FFATNOMMJ", "103", "paid", "Pago aceptado", "Transferencia bancaria", False),  # kept, not reconciled
        ("UOYEVOLIK", "104", "cancelled", "Cancelado", "PagoEfectivo", True),
        ("KHWLILZLL", "105", "paid", "Preparación en curso", "PagoEfectivo", True),  # decoded from Latin-1
    ]
    assert home.query("SELECT count(*) AS n FROM quarantine") == [{"n": 0}]


def test_a_magento2_order_grid_export_ingests_and_reconciles(home):
    store = example_store("magento2")
    home.config(stores=[store])
    raw = (FIXTURES / "magento2_sales_order_grid.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw and "Núñez".encode() in raw
    home.drop("orders/trujillo_magento/export.csv", raw)
    home.statements(
        paid("92000001", "000000123", "120.00")
        + paid("92000006", "000000126", "45.00", "USD", "2026-07-15T09:00:00-05:00")
        + paid("92000007", "000000127", "75.50"),
        store="trujillo_magento",
    )
    home.run("2026-07-14", "2026-07-14")

    assert statuses(home, "trujillo_magento") == [
        ("000000123", "MATCHED", None, "PEN", 12000, "2026-07-14"),
        ("000000124", "CANCELLED_UNPAID", None, "PEN", 6490, "2026-07-14"),
        ("000000126", "MATCHED", None, "USD", 4500, "2026-07-14"),   # 7:55 PM Lima: the 15th in UTC
        ("000000127", "MATCHED", None, "PEN", 7550, "2026-07-14"),   # Closed = refunded: counts as paid
    ]
    emails = home.query("SELECT customer_email FROM orders WHERE store_id = 'trujillo_magento' ORDER BY order_id")
    assert emails[0] == {"customer_email": "jose.pena@example.pe"}
    # The multi-line `Purchase Point` cells span three physical lines: every row was still read.
    assert home.query("SELECT rows_read, rows_loaded, rows_quarantined FROM ingested_files WHERE source = 'orders'") == [
        {"rows_read": 5, "rows_loaded": 5, "rows_quarantined": 0}]


def test_a_value_missing_from_a_map_is_quarantined_with_file_line_column_and_value(home):
    home.config(stores=[example_store("prestashop")])
    home.drop(
        "orders/piura_presta/export.csv",
        '"ID";"Reference";"Customer";"Total";"Payment";"Status";"Date"\r\n'
        '"201";"AAAAAAAAA";"J. Peña";"S/ 10.00";"PagoEfectivo";"Pago aceptado";"2026-07-14 09:00:00"\r\n'
        '"202";"BBBBBBBBB";"M. Muñoz";"S/ 20.00";"PagoEfectivo";"Error en pago";"2026-07-14 09:10:00"\r\n'
        '"203";"CCCCCCCCC";"L. Ñahui";"S/ 30.00";"Yape";"Pago aceptado";"2026-07-14 09:20:00"\r\n'
        '"204";"DDDDDDDDD";"R. Chávez";"S/ 1,250.00";"PagoEfectivo";"Pago aceptado";"14/07/2026"\r\n'
        '"205";"EEEEEEEEE";"I. Rojas";"120.00";"PagoEfectivo";"Pago aceptado";"2026-07-14 09:40:00"\r\n',
        dedent=False,
    )
    home.run("2026-07-14", "2026-07-14")

    rows = home.query("SELECT file, line, errors, raw FROM quarantine ORDER BY line")
    assert [(r["file"], r["line"], r["errors"]) for r in rows] == [
        ("orders/piura_presta/export.csv", 3,
         "status: 'Error en pago' is not in `columns.status.map` of pagorecon.yaml; add it there, then drop the file again"),
        ("orders/piura_presta/export.csv", 4,
         "payment: 'Yape' is not in `columns.payment_method.map` of pagorecon.yaml; add it there, then drop the file again"),
        ("orders/piura_presta/export.csv", 5,
         "date: '14/07/2026' must be an ISO-8601 timestamp like 2026-07-14T19:30:00-05:00, in the years 1900-2199; "
         "total: 'S/ 1,250.00' has a thousands separator; write 1234.50"),
        ("orders/piura_presta/export.csv", 6,
         "currency: unknown; map a `currency` column, list the amount's symbol in `currency_symbols` or set "
         "`default_currency` in pagorecon.yaml"),
    ]
    assert '"Status": "Error en pago"' in rows[0]["raw"]   # the row as exported, under its own header
    assert home.query("SELECT rows_read, rows_loaded, rows_quarantined FROM ingested_files") == [
        {"rows_read": 5, "rows_loaded": 1, "rows_quarantined": 4}]
    assert [o["order_id"] for o in home.query("SELECT order_id FROM orders")] == ["AAAAAAAAA"]


def test_an_export_missing_a_mapped_column_is_refused_naming_it(home):
    home.config(stores=[example_store("prestashop")])
    home.drop("orders/piura_presta/export.csv", "ID;Reference;Total;Payment;Date\n1;AAAAAAAAA;S/ 10.00;PagoEfectivo;2026-07-14\n")
    home.run("2026-07-14", "2026-07-14")
    (failed,) = home.query("SELECT status, error FROM ingested_files")
    assert failed["status"] == "failed"
    assert failed["error"].startswith("line 1: the header is missing required column(s) status ")


def test_date_format_and_decimal_comma_of_a_home_made_export(home):
    home.config(stores=[{
        "id": "bodega", "order_format": "mapped", "columns": {
            "order_id": "Pedido", "reference": "Pedido", "created_at": "Fecha", "total": "Importe",
            "discount": "Descuento", "customer_document": "DNI", "currency": "Moneda",
            "date_format": "%d/%m/%Y %H:%M", "decimal_separator": ",", "default_currency": "PEN",
            "status": {"column": "Estado", "map": {"pagado": "paid", "pendiente": "pending"}},
            "payment_method": {"column": "Pago", "map": {"PagoEfectivo": True, "efectivo": False}},
        }}])
    home.drop("orders/bodega/pedidos.csv",
              "Pedido;Fecha;Importe;Descuento;DNI;Moneda;Estado;Pago\n"
              "B-1;14/07/2026 21:15;59,90;5,00;45678123;;PAGADO;pagoefectivo\n"
              "B-2;14/07/2026 08:00;12,5;;40011223;USD;pendiente;efectivo\n")
    home.statements(paid("93000001", "B-1", "59.90"), store="bodega")
    home.run("2026-07-14", "2026-07-14")
    orders = home.query("SELECT order_id, created_at::VARCHAR AS created_at, currency, total_cents, discount_cents, "
                        "customer_document, status, is_pagoefectivo FROM orders ORDER BY order_id")
    assert [tuple(o.values()) for o in orders] == [
        ("B-1", "2026-07-14 21:15:00-05", "PEN", 5990, 500, "45678123", "paid", True),
        ("B-2", "2026-07-14 08:00:00-05", "USD", 1250, None, "40011223", "pending", False),
    ]
    assert statuses(home, "bodega") == [("B-1", "MATCHED", None, "PEN", 5990, "2026-07-14")]


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.update(order_number="ID"),
     "`stores[0].columns` has unknown canonical field(s) order_number; allowed: order_id, reference, created_at, "
     "status, currency, total, payment_method, discount, customer_email, customer_document, date_format, "
     "decimal_separator, default_currency, currency_symbols"),
    (lambda c: c.pop("reference"), "`stores[0].columns.reference` is required"),
    (lambda c: c["status"].update(map={}),
     "`stores[0].columns.status.map` must map at least one export value, like {Pago aceptado: paid, Cancelado: cancelled}"),
    (lambda c: c["payment_method"].update(map=None),
     "`stores[0].columns.payment_method.map` must map at least one export value, like "
     "{PagoEfectivo: true, Transferencia bancaria: false}"),
    (lambda c: c["status"]["map"].update(Enviado="shipped"),
     "`stores[0].columns.status.map.Enviado` must be one of pending, paid, cancelled, refunded, got 'shipped'"),
    (lambda c: c["status"]["map"].update({"pago ACEPTADO": "paid"}),
     "`stores[0].columns.status.map.pago ACEPTADO` is listed twice (export values are matched ignoring case)"),
    (lambda c: c["payment_method"]["map"].update(Yape="sí"),
     "`stores[0].columns.payment_method.map.Yape` must be true (PagoEfectivo) or false (another method), got 'sí'"),
    (lambda c: c.update(status="Status"),
     "`stores[0].columns.status` must be a mapping like {column: Status, map: {Pago aceptado: paid, Cancelado: cancelled}}"),
    (lambda c: c["status"].pop("column"), "`stores[0].columns.status.column` is required"),
    (lambda c: c.pop("currency_symbols"),
     "`stores[0].columns.currency` is required unless `default_currency` or `currency_symbols` gives the currency"),
    (lambda c: c.update(date_format="dd/mm/yyyy"),
     "`stores[0].columns.date_format` must be a strptime format that names the date, like \"%d/%m/%Y %H:%M:%S\", got 'dd/mm/yyyy'"),
    (lambda c: c.update(decimal_separator=";"), "`stores[0].columns.decimal_separator` must be one of ., ,, got ';'"),
    (lambda c: c.update(total=""), "`stores[0].columns.total` must be a non-empty string, got ''"),
])
def test_check_config_explains_a_bad_columns_block_by_key(home, capsys, change, message):
    store = copy.deepcopy(example_store("prestashop"))
    change(store["columns"])
    home.config(stores=[store])
    assert pagorecon(["--home", str(home.path), "check-config"]) == 2
    assert capsys.readouterr().err.strip() == f"pagorecon: bad configuration: {home.path / 'pagorecon.yaml'}: {message}"


@pytest.mark.parametrize(("store", "message"), [
    ({"id": "p", "order_format": "mapped"},
     "`stores[0].columns` is required when order_format is mapped: name the export's column of each field"),
    ({"id": "p", "order_format": "canonical", "columns": example_store("prestashop")["columns"]},
     "`stores[0].columns` is only for order_format mapped (this store's is canonical)"),
    ({**example_store("prestashop"), "reference_field": "cip"},
     "`stores[0].reference_field` must be one of reference, order_id for mapped orders, got 'cip'"),
])
def test_columns_go_with_the_mapped_format_only(store, message):
    with pytest.raises(ConfigError) as raised:
        parse_config({"stores": [store]})
    assert str(raised.value) == f"pagorecon.yaml: {message}"


def test_the_documented_examples_pass_check_config(home, capsys):
    home.config(stores=[example_store("prestashop"), example_store("magento2")])
    assert pagorecon(["--home", str(home.path), "check-config"]) == 0
    assert "2 store(s): piura_presta, trujillo_magento" in capsys.readouterr().out


def test_the_demo_store_is_the_documented_prestashop_example():
    documented = example_store("prestashop")
    assert (MAPPED_SPEC[0], MAPPED_SPEC[1], "mapped") == (documented["id"], documented["name"], documented["order_format"])
    assert PRESTASHOP_COLUMNS == documented["columns"]


def test_the_sandbox_mapped_store_reconciles_as_planned(tmp_path):
    """The demo's PrestaShop store: its export is written by the generator, read by mapping, and
    every planted scenario reconciles to the status it was planted for."""
    from conftest import Home

    args = dict(stores=1, days=6, start=dt.date(2026, 7, 13), seed=7, orders_per_day=6, broken_rows=True)
    sandbox = generate(tmp_path, mapped_store=True, **args)
    plan = plan_sandbox(mapped_store=True, **args)
    assert sandbox.store_ids == ["lima_shop", "piura_presta"]
    exports = sorted((tmp_path / "landing/orders/piura_presta").glob("*.csv"))
    assert exports and all(p.read_bytes().count(b"\r\n") >= 1 for p in exports)
    assert any(not p.read_bytes().startswith(b"\xef\xbb\xbf") for p in exports)   # the Latin-1 day

    home = Home(tmp_path)
    home.run(str(sandbox.start), str(sandbox.end), stores=["piura_presta"])
    got = Counter(r["status"] for r in home.query("SELECT status FROM recon_items WHERE store_id = 'piura_presta'"))
    assert got == Counter(i.status for i in plan.intended() if i.store_id == "piura_presta")
    assert len(got) >= 8   # most planted scenarios, not just matches
    quarantined = home.query("SELECT line, errors FROM quarantine WHERE store_id = 'piura_presta' AND source = 'orders'")
    assert [q["errors"] for q in quarantined] == [
        "status: 'Error en pago' is not in `columns.status.map` of pagorecon.yaml; add it there, then drop the file again"]
