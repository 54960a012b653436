"""Ugly real-world files: each ends in a clean table or quarantine, or the whole file is refused.
Row conservation holds for every file."""

import datetime as dt
import json
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from conftest import CANONICAL_HEADER, STATEMENT_HEADER

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.ingestion.loader import ingest_source
from pagorecon_dagster.jobs import MAIN_JOB
from pagorecon_dagster.warehouse.duckdb import connect

GOOD = "90000001,A1,,paid,PEN,10.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,DNI,12345678,ana@example.pe"


def ingest(home, kind="statements"):
    settings = load_settings(home.path)
    with connect(settings.lake) as con:
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


def test_the_same_bytes_twice_in_one_batch_load_once_and_take_one_number(home):
    home.statements(GOOD + "\n", name="a.csv")
    home.statements(GOOD + "\n", name="b.csv")
    report = ingest(home)
    assert [f.status for f in report.files] == ["loaded", "skipped"]
    assert home.query("SELECT count(*) AS n FROM statement_rows")[0]["n"] == 1
    # the skipped file opened no transaction: no file number was taken for it
    (row,) = home.query("SELECT c.value = (SELECT max(file_seq) FROM ingested_files) AS same FROM counters AS c WHERE c.name = 'file_seq'")
    assert row["same"]


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


# --- one bad file never stops a run; errors never echo personal data ---------------------------

DNI, EMAIL = "45871236", "rosa.quispe@example.pe"


def cli_run(home, capsys, monkeypatch, tmp_path, start="2026-07-14", end="2026-07-14"):
    """A real `pagorecon run` (the console script's entry point) over the home."""
    from pagorecon_dagster.cli import main

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir(exist_ok=True)
    code = main(["--home", str(home.path), "run", "--start", start, "--end", end])
    return code, capsys.readouterr()


def deeply_nested_json(levels: int = 3000) -> str:
    return '{"data": ' + '{"cip": ' * levels + '"90000001"' + "}" * levels + "}"


def test_a_deeply_nested_json_fails_alone_and_files_after_it_still_load(home, capsys, monkeypatch, tmp_path):
    from pagorecon_dagster.cli import EXIT_UNREADABLE_FILES
    from pagorecon_dagster.ingestion.readers import MAX_JSON_DEPTH

    deep = deeply_nested_json()
    assert len(deep) > 27_000
    home.drop("statements/shop/a_deep.json", deep, dedent=False)
    home.statements(GOOD + "\n", name="b_good.csv")
    code, out = cli_run(home, capsys, monkeypatch, tmp_path)
    assert code == EXIT_UNREADABLE_FILES, out.err
    assert f"landing/statements/shop/a_deep.json: line 1, column" in out.err
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in out.err
    files = {r["file"]: r for r in home.query("SELECT file, status, error FROM ingested_files")}
    assert files["statements/shop/a_deep.json"]["status"] == "failed"
    assert files["statements/shop/b_good.csv"]["status"] == "loaded"
    assert [r["cip"] for r in home.query("SELECT cip FROM payments")] == ["90000001"]
    assert "MATCHED" not in out.err and "Reconciled shop, shopi" in out.out


def test_a_json_larger_than_the_cap_is_refused_without_being_parsed(home, monkeypatch):
    from pagorecon_dagster.ingestion import readers

    monkeypatch.setattr(readers, "MAX_JSON_BYTES", 1000)
    home.drop("statements/shop/big.json", json.dumps([{"cip": str(90000000 + i)} for i in range(100)]), dedent=False)
    (outcome,) = ingest(home).files
    assert outcome.status == "failed"
    assert "is larger than the 1,000-byte limit for a JSON statement" in outcome.error


def test_any_failure_while_reading_one_file_fails_only_that_file(home, capsys, monkeypatch, tmp_path):
    """A failure no rule foresaw (a fault injected into typing one file's rows) fails that file:
    `failed`, named, exit 3; the files around it load and nothing of it is half-written."""
    import dataclasses

    from pagorecon_dagster.cli import EXIT_UNREADABLE_FILES
    from pagorecon_dagster.ingestion.sources import SOURCES

    statements = SOURCES["statements"]

    def to_rows(clean, store):
        if (clean["cip"] == "90000003").any():
            raise OverflowError("Python int too large to convert to C long")
        return statements.to_rows(clean, store)

    monkeypatch.setitem(SOURCES, "statements", dataclasses.replace(statements, to_rows=to_rows))
    home.statements(GOOD.replace("90000001", "90000002").replace("A1", "A2") + "\n", name="a_before.csv")
    home.statements(GOOD.replace("90000001", "90000003") + "\n", name="b_fault.csv")
    home.statements(GOOD + "\n", name="c_after.csv")
    code, out = cli_run(home, capsys, monkeypatch, tmp_path)
    assert code == EXIT_UNREADABLE_FILES, out.err
    assert "landing/statements/shop/b_fault.csv: unexpected OverflowError while reading" in out.err
    status = {r["file"]: r["status"] for r in home.query("SELECT file, status FROM ingested_files")}
    assert status == {"statements/shop/a_before.csv": "loaded", "statements/shop/b_fault.csv": "failed",
                      "statements/shop/c_after.csv": "loaded"}
    assert sorted(r["cip"] for r in home.query("SELECT cip FROM payments")) == ["90000001", "90000002"]
    assert home.query("SELECT count(*) AS n FROM quarantine") == [{"n": 0}]


@pytest.mark.parametrize("column, value, problem", [
    ("amount", "99999999999999999999.00", "'99999999999999999999.00' has more than 15 digits before the point"),
    ("date_payment", "0001-01-01T00:00:00", "'0001-01-01T00:00:00' must be an ISO-8601 timestamp"),
    ("date_creation", "2999-07-14T10:00:00-05:00", "'2999-07-14T10:00:00-05:00' must be an ISO-8601 timestamp"),
])
def test_values_out_of_range_are_row_errors_not_file_failures(home, column, value, problem):
    """A 20-digit amount overflowed BIGINT and year 0001 (a system's "no date") pandas' range: each
    failed the whole file. Now each is a row error naming the column; the good row loads."""
    columns = STATEMENT_HEADER.split(",")
    bad = GOOD.replace("90000001", "90000002").split(",")
    bad[columns.index(column)] = value
    home.statements(",".join(bad) + "\n" + GOOD + "\n")
    report = ingest(home)
    assert [(f.status, f.rows_loaded, f.rows_quarantined) for f in report.files] == [("loaded", 1, 1)]
    (row,) = home.query("SELECT line, errors FROM quarantine")
    assert row["line"] == 2 and row["errors"].startswith(f"{column}: {problem}")


def test_a_nul_byte_in_a_field_is_a_row_error_naming_the_column(home):
    home.drop(
        "statements/shop/nul.csv",
        STATEMENT_HEADER + "\n" + GOOD.replace("ana@", "a\x00na@") + "\n" + GOOD.replace("90000001", "90000002") + "\n",
        dedent=False,
    )
    home.drop("statements/shop/nul.json", json.dumps([{"cip": "90000003", "transactionCode": "A\u00003", "status": "paid",
                                                      "currency": "PEN", "amount": "5.00",
                                                      "datePayment": "2026-07-14T11:00:00-05:00"}]), dedent=False)
    report = ingest(home)
    assert [(f.status, f.rows_loaded, f.rows_quarantined) for f in report.files] == [("loaded", 1, 1), ("loaded", 0, 1)]
    q = home.query("SELECT file, line, errors FROM quarantine ORDER BY file")
    assert [(r["file"], r["line"], r["errors"]) for r in q] == [
        ("statements/shop/nul.csv", 2, "user_email: contains a NUL byte (\\x00); remove it and drop the file again"),
        ("statements/shop/nul.json", 1, "transaction_code: contains a NUL byte (\\x00); remove it and drop the file again"),
    ]
    assert [r["cip"] for r in home.query("SELECT cip FROM statement_rows")] == ["90000002"]
    assert_rows_conserved(home)


def test_a_csv_without_header_names_file_line_and_columns_and_echoes_no_personal_data(home, capsys, monkeypatch, tmp_path):
    row = GOOD.replace("12345678", DNI).replace("ana@example.pe", EMAIL)
    home.drop("statements/shop/no_header.csv", row + "\n" + row.replace("90000001", "90000002") + "\n", dedent=False)
    home.statements(GOOD + "\n", name="z_good.csv")
    # An unreadable file touches the Lima day it was read: the alert of that day names it.
    today = dt.datetime.now(ZoneInfo("America/Lima")).date().isoformat()
    code, out = cli_run(home, capsys, monkeypatch, tmp_path, start=today, end=today)
    assert code == 3
    (failed,) = home.query("SELECT file, error FROM ingested_files WHERE status = 'failed'")
    assert failed["file"] == "statements/shop/no_header.csv"
    assert failed["error"].startswith("line 1: no header")
    assert "cip, transaction_code" in failed["error"]  # says what the header must name
    alerts = " ".join(r["message"] for r in home.query("SELECT message FROM alerts WHERE kind = 'VALIDATION_REJECTS'"))
    assert "landing/statements/shop/no_header.csv unreadable (line 1: no header" in alerts
    events = " ".join(
        str(e.user_message) + str(e.dagster_event.event_specific_data if e.dagster_event else "")
        # the reconcile run's (the report runs that follow it read no landing file)
        for e in dg.DagsterInstance.get().all_logs(
            next(r for r in dg.DagsterInstance.get().get_runs() if r.job_name == MAIN_JOB).run_id)
    )
    assert "no_header.csv" in events
    for place, text in {"ingested_files.error": failed["error"], "stderr": out.err, "stdout": out.out,
                        "event log": events, "alert": alerts}.items():
        for personal in (DNI, EMAIL, "rosa.quispe"):
            assert personal not in text, f"{place} shows {personal!r}: {text}"


def test_a_header_missing_columns_names_only_known_columns(home):
    home.drop("statements/shop/nocol.csv", f"cip,status,{EMAIL}\n1,paid,x\n")
    (outcome,) = ingest(home).files
    assert outcome.status == "failed"
    assert outcome.error.startswith("line 1: the header is missing required column(s) transaction_code, currency, amount")
    assert "cip, status and 1 other column" in outcome.error
    assert EMAIL not in outcome.error and "rosa" not in outcome.error


def test_alert_text_is_masked_even_when_a_recorded_error_carries_personal_data(home):
    """A warehouse written before errors stopped quoting rows still holds such an error: the
    VALIDATION_REJECTS alert that quotes it shows it masked."""
    settings = load_settings(home.path)
    leaked = f"header is missing required column(s) cip; found: 90000001, A1, DNI, {DNI}, {EMAIL}, +51 987 654 321"
    with connect(settings.lake) as con:
        con.execute(
            "INSERT INTO ingested_files VALUES ('statements/shop/old.csv', 'abc', 'statements', 'shop', NULL, 'utf-8-sig',"
            " 0, 0, 0, 'failed', ?, now(), NULL)",
            [leaked],
        )
    today = dt.datetime.now(ZoneInfo("America/Lima")).date().isoformat()
    home.run(today, today, stores=["shop"])
    (alert,) = home.query("SELECT message FROM alerts WHERE kind = 'VALIDATION_REJECTS'")
    assert "landing/statements/shop/old.csv unreadable" in alert["message"]
    for personal in (DNI, EMAIL, "rosa.quispe", "987 654 321"):
        assert personal not in alert["message"], alert["message"]
