"""Ugly real-world files: each ends in a clean table or quarantine, or the whole file is refused.
Row conservation holds for every file."""

import json

from conftest import CANONICAL_HEADER, STATEMENT_HEADER

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.ingestion.loader import ingest_source
from pagorecon_dagster.warehouse.duckdb import connect

GOOD = "90000001,A1,,paid,PEN,10.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,DNI,12345678,ana@example.pe"


def ingest(home, kind="statements"):
    settings = load_settings(home.path)
    with connect(settings.warehouse_path) as con:
        return ingest_source(con, settings, kind)


def assert_rows_conserved(home):
    for f in home.query("SELECT * FROM ingested_files WHERE status = 'loaded'"):
        assert f["rows_read"] == f["rows_loaded"] + f["rows_quarantined"], f
        table = {"statements": "statement_rows", "orders": "order_rows", "fx": "fx_rate_rows", "refunds": "refund_request_rows"}[f["source"]]
        loaded = home.query(f"SELECT count(*) AS n FROM {table} WHERE file = ?", [f["file"]])[0]["n"]
        quarantined = home.query("SELECT count(*) AS n FROM quarantine WHERE file = ?", [f["file"]])[0]["n"]
        assert (loaded, quarantined) == (f["rows_loaded"], f["rows_quarantined"]), f


def test_bom_crlf_and_latin1_are_read(home):
    body = (STATEMENT_HEADER + "\r\n" + GOOD.replace("ana@example.pe", "peña@example.pe") + "\r\n")
    home.drop("statements/shop/bom.csv", b"\xef\xbb\xbf" + body.encode("utf-8"))
    home.drop("statements/shop/latin1.csv", body.replace("90000001", "90000002").encode("cp1252"))
    report = ingest(home)
    assert [f.status for f in report.files] == ["loaded", "loaded"]
    rows = home.query("SELECT cip, user_email, s.file, encoding FROM statement_rows s JOIN ingested_files USING (file) ORDER BY cip")
    assert [(r["cip"], r["user_email"], r["encoding"]) for r in rows] == [
        ("90000001", "peña@example.pe", "utf-8-sig"),
        ("90000002", "peña@example.pe", "cp1252"),
    ]
    assert_rows_conserved(home)


def test_bad_money_strings_are_quarantined_with_every_error(home):
    rows = [
        GOOD,
        GOOD.replace("10.00", '"1,234.50"'),
        GOOD.replace("10.00", "12.345"),
        GOOD.replace("10.00", "-5.00"),
        GOOD.replace("10.00", "S/ 20.00"),
        GOOD.replace("10.00", "1.5E+3"),
        GOOD.replace(",paid,PEN,10.00", ",paidd,EUR,10,50"),
    ]
    path = home.statements("\n".join(rows) + "\n")
    report = ingest(home)
    (outcome,) = report.files
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (7, 1, 6)
    q = {r["line"]: r for r in home.query("SELECT line, errors, raw, file FROM quarantine ORDER BY line")}
    assert sorted(q) == [3, 4, 5, 6, 7, 8]
    assert q[3]["errors"] == "amount: '1,234.50' has a thousands separator; write 1234.50"
    assert "more than 2 decimal places" in q[4]["errors"]
    assert "negative" in q[5]["errors"]
    assert "'S/ 20.00' is not a plain decimal" in q[6]["errors"]
    assert "scientific notation" in q[7]["errors"]
    # line 8 has an extra field (decimal comma split the amount): the row is refused as a whole
    assert q[8]["errors"] == "row has 16 fields, the header has 15"
    assert json.loads(q[3]["raw"])["amount"] == "1,234.50"
    assert q[3]["file"] == "statements/shop/" + path.name
    assert_rows_conserved(home)


def test_all_errors_of_a_row_are_listed(home):
    home.statements(GOOD.replace(",paid,PEN,10.00", ",paidd,EUR,") + "\n")
    ingest(home)
    (row,) = home.query("SELECT errors FROM quarantine")
    errors = row["errors"].split("; ")
    assert any(e.startswith("status: 'paidd' must be one of") for e in errors)
    assert any(e.startswith("currency: 'EUR' must be one of: PEN, USD") for e in errors)
    assert "amount: is empty (an amount is required)" in errors


def test_empty_file_is_refused_and_named(home):
    home.drop("statements/shop/empty.csv", b"")
    report = ingest(home)
    (outcome,) = report.files
    assert outcome.status == "failed" and "empty file" in outcome.error
    (row,) = home.query("SELECT file, status, error, rows_read FROM ingested_files")
    assert (row["file"], row["status"], row["rows_read"]) == ("statements/shop/empty.csv", "failed", 0)


def test_truncated_file_loads_nothing_and_others_still_load(home):
    good = home.statements(GOOD + "\n", name="a_good.csv")
    truncated = STATEMENT_HEADER + "\n" + GOOD.replace("90000001", "90000002") + "\n" + "90000003,A3,,paid,PEN,10.0"
    home.drop("statements/shop/b_truncated.csv", truncated, dedent=False)
    home.drop("statements/shop/c_open_quote.csv", STATEMENT_HEADER + '\n"90000004,A4,,paid', dedent=False)
    report = ingest(home)
    status = {f.file.split("/")[-1]: (f.status, f.error) for f in report.files}
    assert status[good.name] == ("loaded", None)
    assert status["b_truncated.csv"][0] == "failed" and "truncated" in status["b_truncated.csv"][1]
    assert status["c_open_quote.csv"][0] == "failed"
    assert [r["cip"] for r in home.query("SELECT cip FROM statement_rows")] == ["90000001"]
    assert home.query("SELECT count(*) AS n FROM quarantine")[0]["n"] == 0


def test_missing_required_column_refuses_the_file(home):
    home.drop("statements/shop/nocol.csv", "cip,status,currency\n1,paid,PEN\n")
    (outcome,) = ingest(home).files
    assert outcome.status == "failed"
    assert "missing required column(s) transaction_code, amount" in outcome.error


def test_undecodable_bytes_refuse_the_file(home):
    home.drop("statements/shop/binary.csv", STATEMENT_HEADER.encode() + b"\n\x81\x8d\x8f\x90\x9d\n")
    (outcome,) = ingest(home).files
    assert outcome.status == "failed" and "not UTF-8 and not Latin-1" in outcome.error


def test_unknown_store_folder_is_refused(home):
    home.drop("statements/nobody/s.csv", STATEMENT_HEADER + "\n" + GOOD + "\n")
    (outcome,) = ingest(home).files
    assert outcome.status == "failed" and "'nobody' is not in pagorecon.yaml" in outcome.error


def test_extra_columns_and_semicolons_are_fine(home):
    header = STATEMENT_HEADER + ",agent_note"
    home.drop("statements/shop/extra.csv", header.replace(",", ";") + "\n" + (GOOD + ",hola").replace(",", ";") + "\n")
    (outcome,) = ingest(home).files
    assert (outcome.status, outcome.rows_loaded) == ("loaded", 1)


def test_redropped_file_is_a_no_op_and_restatement_supersedes(home):
    home.statements(GOOD + "\n", name="day1.csv")
    ingest(home)
    home.statements(GOOD + "\n", name="day1_again.csv")  # same bytes, other name
    report = ingest(home)
    assert [f.status for f in report.files] == ["skipped", "skipped"]
    assert home.query("SELECT count(*) AS n FROM statement_rows")[0]["n"] == 1
    # a later file restates the CIP as reversed; within a file the last row wins
    home.statements(GOOD.replace(",paid,", ",pending,") + "\n" + GOOD.replace(",paid,", ",reversed,") + "\n", name="day2.csv")
    home.run("2026-07-14", "2026-07-14")
    (cip,) = home.query("SELECT status FROM payments")
    assert cip["status"] == "reversed"


def test_canonical_orders_latin1_with_accents_and_bad_dates(home):
    rows = (
        CANONICAL_HEADER + "\r\n"
        "A1,2026-07-14 10:00:00,paid,PEN,10.00,0.00,PagoEfectivo,,peña@example.pe,12345678\r\n"
        "A2,14/07/2026 10:00,paid,PEN,10.00,0.00,PagoEfectivo,,núñez@example.pe,12345678\r\n"
        "A3,2026-07-14 10:00:00,shipped,PEN,10.00,,PagoEfectivo,,,\r\n"
    )
    home.drop("orders/shop/o.csv", rows.encode("cp1252"))
    (outcome,) = ingest(home, "orders").files
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (1, 2)
    q = home.query("SELECT line, errors, raw FROM quarantine ORDER BY line")
    assert q[0]["line"] == 3 and "created_at: '14/07/2026 10:00' must be an ISO-8601 timestamp" in q[0]["errors"]
    assert "núñez" in q[0]["raw"]
    assert "status: 'shipped' must be one of" in q[1]["errors"] and "discount: is empty" in q[1]["errors"]
    assert home.query("SELECT customer_email FROM order_rows")[0]["customer_email"] == "peña@example.pe"
    assert_rows_conserved(home)


def test_line_numbers_survive_blank_lines_quoted_line_breaks_and_block_edges(home, monkeypatch):
    from pagorecon_dagster.ingestion import loader

    monkeypatch.setattr(loader, "CHUNK_ROWS", 2)  # every block edge falls inside the file
    bad = GOOD.replace("10.00", '"1,234.50"').replace(",BCP,", ',"BCP\nagencia 2",', 1)
    home.drop(
        "statements/shop/s.csv",
        STATEMENT_HEADER + "\r\n" + GOOD + "\r\n\r\n" + bad.replace("90000001", "90000002") + "\r\n"
        + GOOD.replace("90000001", "90000003") + "\r\n" + "90000004,A4,short\r\n" + GOOD.replace("90000001", "90000005"),
        dedent=False,
    )
    ingest(home)
    assert [r["line"] for r in home.query("SELECT line FROM statement_rows ORDER BY line")] == [2, 6, 8]
    quarantined = home.query("SELECT line, errors FROM quarantine ORDER BY line")
    assert [q["line"] for q in quarantined] == [4, 7]
    assert "thousands separator" in quarantined[0]["errors"] and "3 fields" in quarantined[1]["errors"]
    assert_rows_conserved(home)
