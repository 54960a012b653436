"""Shopify's own export and PagoEfectivo's JSON shapes, as they really arrive."""

import csv
import io
import json

SHOPIFY_HEADER = [
    "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at", "Accepts Marketing",
    "Currency", "Subtotal", "Shipping", "Taxes", "Total", "Discount Code", "Discount Amount", "Shipping Method",
    "Created at", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem compare at price", "Lineitem sku",
    "Lineitem requires shipping", "Lineitem taxable", "Lineitem fulfillment status", "Billing Name", "Billing Street",
    "Billing City", "Billing Zip", "Billing Country", "Billing Phone", "Notes", "Cancelled at", "Payment Method",
    "Payment Reference", "Refunded Amount", "Vendor", "Outstanding Balance", "Id", "Tags", "Risk Level", "Source",
    "Phone", "Receipt Number", "Payment ID", "Payment References",
]


def shopify_csv(orders):
    """orders: list of (order fields dict, [line item names]) -> CRLF CSV text like Shopify writes."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(SHOPIFY_HEADER)
    for fields, items in orders:
        for number, item in enumerate(items):
            row = {h: "" for h in SHOPIFY_HEADER}
            row.update({"Name": fields["Name"], "Email": fields.get("Email", ""), "Lineitem quantity": "1", "Lineitem name": item, "Lineitem price": "10.00"})
            if number == 0:
                row.update(fields)
            writer.writerow([row[h] for h in SHOPIFY_HEADER])
    return out.getvalue()


def order(name, total, status="pending", created="2026-07-14 10:23:45 -0500", method="PagoEfectivo", **extra):
    return {"Name": name, "Email": "josé.peña@example.pe", "Financial Status": status, "Currency": "PEN", "Subtotal": total,
            "Total": total, "Discount Amount": "0.00", "Created at": created, "Payment Method": method,
            "Id": str(5_000_000_000_000 + int(name.strip("#"))), "Billing Name": "José Peña", "Notes": "=HYPERLINK(\"x\")", **extra}


def statement(cip, code, amount, paid_at="2026-07-14T19:45:00-05:00", status="paid"):
    from conftest import STATEMENT_HEADER  # noqa: F401  (column order documented there)
    return f"{cip},{code},,{status},PEN,{amount},,,2026-07-14T10:30:00-05:00,,{paid_at},BCP,DNI,12345678,\n"


def test_shopify_multi_line_orders_hash_names_and_cancellations(home):
    home.drop(
        "orders/shopi/orders_export_1.csv",
        shopify_csv([
            (order("#1001", "30.00"), ["Chullo", "Poncho", "Mate"]),
            (order("#1002", "10.00", status="paid"), ["Chullo"]),
            (order("#1003", "10.00", status="voided"), ["Chullo"]),
            (order("#1004", "20.00", status="paid", **{"Cancelled at": "2026-07-14 12:00:00 -0500"}), ["Chullo", "Mate"]),
            (order("#1005", "15.00", status="paid", method="Shopify Payments"), ["Mate"]),
        ]),
        dedent=False,
    )
    home.statements(
        statement("80000001", "1001", "30.00") + statement("80000002", "#1002", "10.00")
        + statement("80000004", "1004", "20.00"),
        store="shopi",
    )
    home.run("2026-07-14", "2026-07-14", stores=["shopi"])
    items = {i["order_id"]: i for i in home.items("shopi")}
    assert set(items) == {"#1001", "#1002", "#1003", "#1004"}  # #1005 paid by card: kept, not reconciled
    assert (items["#1001"]["status"], items["#1001"]["order_total_cents"], items["#1001"]["cip"]) == ("MATCHED", 3000, "80000001")
    assert items["#1002"]["status"] == "MATCHED"
    assert items["#1003"]["status"] == "CANCELLED_UNPAID"
    assert items["#1004"]["status"] == "PAID_CANCELLED_ORDER"
    orders = {o["order_id"]: o for o in home.query("SELECT order_id, line_items, is_pagoefectivo, created_at, source_order_id FROM orders")}
    assert orders["#1001"]["line_items"] == 3 and orders["#1005"]["is_pagoefectivo"] is False
    assert orders["#1001"]["source_order_id"] == "5000000001001"
    files = home.query("SELECT rows_read, rows_loaded, rows_quarantined FROM ingested_files WHERE source = 'orders'")
    assert files == [{"rows_read": 8, "rows_loaded": 8, "rows_quarantined": 0}]


def test_shopify_bad_first_row_quarantines_its_line_items_too(home):
    home.drop(
        "orders/shopi/export.csv",
        shopify_csv([(order("#2001", "1,030.00"), ["Chullo", "Poncho"]), (order("#2002", "10.00"), ["Mate"])]),
        dedent=False,
    )
    home.run("2026-07-14", "2026-07-14", stores=["shopi"])
    q = home.query("SELECT line, errors FROM quarantine ORDER BY line")
    assert [r["line"] for r in q] == [2, 3]
    assert "total: '1,030.00' has a thousands separator" in q[0]["errors"]
    assert q[1]["errors"] == "line item of order '#2001', whose first row was rejected"
    assert [i["order_id"] for i in home.items("shopi")] == ["#2002"]


def test_shopify_created_at_offset_decides_the_lima_day(home):
    home.drop(
        "orders/shopi/export.csv",
        # 2026-07-15 03:30 UTC is still 2026-07-14 in Lima
        shopify_csv([(order("#3001", "10.00", created="2026-07-15 03:30:00 +0000"), ["Mate"])]),
        dedent=False,
    )
    home.run("2026-07-14", "2026-07-15", stores=["shopi"])
    (item,) = home.items("shopi")
    assert str(item["business_date"]) == "2026-07-14"


def test_cip_search_reply_and_notifications(home):
    home.orders(
        """\
        A1,2026-07-14 10:00:00,pending,PEN,100.50,0.00,PagoEfectivo,,,
        A2,2026-07-14 10:00:00,pending,PEN,20.00,0.00,PagoEfectivo,,,
        """
    )
    home.drop("statements/shop/cips_search.json", json.dumps({
        "code": 100, "message": "Solicitud exitosa",
        "data": [
            {"cip": 90000001, "transactionCode": "A1", "amount": 100.5, "currency": "PEN", "status": 22, "statusName": "Pendiente",
             "dateCreation": "2026-07-14T10:00:00-05:00", "dateExpiry": "2026-07-20T10:00:00-05:00", "datePayment": None},
            {"cip": "90000002", "transactionCode": "A2", "amount": "20.00", "currency": "PEN", "status": "23",
             "dateCreation": "2026-07-14T10:00:00-05:00", "datePayment": "2026-07-14T21:00:00-05:00"},
        ],
    }))
    paid = {"eventType": "cip.paid", "operationNumber": "OP-1",
            "data": {"cip": "90000001", "currency": "PEN", "amount": 100.50, "paymentDate": "2026-07-14T20:00:00-05:00", "transactionCode": "A1"}}
    home.drop("statements/shop/notif_1.json", json.dumps(paid))
    # the same notification delivered again, in a list with a broken one
    home.drop("statements/shop/notif_2.json", json.dumps([paid, {"eventType": "cip.paid", "operationNumber": "OP-2", "data": {"cip": "90000003", "amount": "1,00"}}]))
    home.run("2026-07-14", "2026-07-14")
    items = {i["order_id"]: i for i in home.items()}
    assert (items["A1"]["status"], items["A1"]["paid_amount_cents"]) == ("MATCHED", 10050)
    assert items["A2"]["status"] == "MATCHED"
    assert home.query("SELECT count(*) AS n FROM recon_items WHERE status = 'DUPLICATE_PAYMENT'")[0]["n"] == 0
    (bad,) = home.query("SELECT line, errors FROM quarantine")
    # a missing transactionCode is no row error (docs/landing-formats.md, Statements); the amount and currency are
    assert bad["line"] == 2 and "transaction_code" not in bad["errors"] and "uses a decimal comma" in bad["errors"]


def test_shopify_orders_split_across_chunks_keep_their_line_items(home, monkeypatch):
    from pagorecon_dagster.ingestion import loader

    monkeypatch.setattr(loader, "CHUNK_ROWS", 2)
    home.drop(
        "orders/shopi/export.csv",
        shopify_csv([
            (order("#4001", "30.00"), ["A", "B", "C"]),
            (order("#4002", "-1"), ["A", "B", "C"]),
            (order("#4003", "10.00"), ["A"]),
        ]),
        dedent=False,
    )
    home.run("2026-07-14", "2026-07-14", stores=["shopi"])
    lines = {o["order_id"]: o["line_items"] for o in home.query("SELECT order_id, line_items FROM order_rows")}
    assert lines == {"#4001": 3, "#4003": 1}
    (f,) = home.query("SELECT rows_read, rows_loaded, rows_quarantined FROM ingested_files")
    assert (f["rows_read"], f["rows_loaded"], f["rows_quarantined"]) == (7, 4, 3)
    q = home.query("SELECT line, errors FROM quarantine ORDER BY line")
    assert [r["line"] for r in q] == [5, 6, 7]
    assert q[2]["errors"] == "line item of order '#4002', whose first row was rejected"


def test_shopify_exports_of_one_batch_are_judged_together_as_each_alone(home, monkeypatch):
    """Several small Shopify exports go through Pandera in one call (ingestion/loader.py
    `_judge_shopify`); each bad order, its line items with it, stays on its own file and line, as
    when every file streams alone."""
    from pagorecon_dagster.config import load_settings
    from pagorecon_dagster.ingestion import loader
    from pagorecon_dagster.warehouse.duckdb import connect

    def drop(home):
        for day in range(4):
            home.drop(f"orders/shopi/export_{day}.csv", shopify_csv([
                (order(f"#{3000 + 10 * day}", "10.00"), ["Chullo"] * (day + 1)),
                (order(f"#{3001 + 10 * day}", f"1.0{day}0,5"), ["Poncho", "Mate"]),  # bad total: its 2 rows out
                (order(f"#{3002 + 10 * day}", "20.00", status="paid"), ["Mate"]),
            ]), dedent=False)

    def ingest(home):
        settings = load_settings(home.path)
        with connect(settings.lake) as con:
            loader.ingest_source(con, settings, "orders")
        return (home.query("SELECT file, line, errors FROM quarantine ORDER BY ALL"),
                home.query("SELECT file, line, order_id, line_items FROM order_rows ORDER BY ALL"),
                home.query("SELECT file, rows_read, rows_loaded, rows_quarantined FROM ingested_files ORDER BY ALL"))

    calls = []
    judge = loader._errors_by_row
    monkeypatch.setattr(loader, "_errors_by_row", lambda schema, frame: calls.append(len(frame)) or judge(schema, frame))
    drop(home)
    together = ingest(home)
    assert calls == [12]  # the 12 order rows of the 4 files, in one call
    quarantined = together[0]
    assert [(q["file"].rsplit("/", 1)[-1], q["line"]) for q in quarantined] == [
        (f"export_{day}.csv", line) for day in range(4) for line in (day + 3, day + 4)]
    assert all(f"1.0{q['file'][-5]}0,5" in q["errors"] or "whose first row was rejected" in q["errors"] for q in quarantined)
    assert [(f["rows_read"], f["rows_loaded"], f["rows_quarantined"]) for f in together[2]] == [
        (day + 4, day + 2, 2) for day in range(4)]

    other = home.path.parent / "alone"
    other.mkdir()
    (other / "pagorecon.yaml").write_text((home.path / "pagorecon.yaml").read_text())
    home.path = other
    drop(home)
    monkeypatch.setattr(loader, "SMALL_FILE_BYTES", 0)  # every file streams on its own
    assert ingest(home) == together
