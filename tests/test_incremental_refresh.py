"""orders and payments read only the files ingested since their last refresh, reference_counts
(and reference_cips) recount only the references they changed, and each always holds exactly what
a rebuild from every raw row would (dbt_like_sql/orders.sql, payments.sql, reference_counts.sql,
reference_cips.sql)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.ingestion.loader import ingest_source
from pagorecon_dagster.reconciliation.models import LATEST_VERSION_MODELS, refresh_model
from pagorecon_dagster.sandbox.generator import generate
from pagorecon_dagster.warehouse.duckdb import Lake, connect, home_lake, model_sql

DAY_IN_NAME = re.compile(r"\d{4}-\d{2}-\d{2}")


def differences(con, name: str) -> tuple[int, int]:
    """Rows only in the table, rows only in a rebuild from all raw rows."""
    con.execute("RESET VARIABLE after_file_seq")
    con.execute("RESET VARIABLE touched_only")
    con.execute(f"CREATE OR REPLACE TEMP TABLE rebuilt AS {model_sql(name)}")
    extra = con.execute(f"SELECT count(*) FROM (FROM {name} EXCEPT ALL FROM rebuilt)").fetchone()[0]
    missing = con.execute(f"SELECT count(*) FROM (FROM rebuilt EXCEPT ALL FROM {name})").fetchone()[0]
    return extra, missing


def test_files_arriving_day_by_day_refresh_incrementally_to_what_a_rebuild_gives(tmp_path):
    source = tmp_path / "generated"
    generate(source, stores=2, days=6)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(source / "pagorecon.yaml", home / "pagorecon.yaml")
    settings = load_settings(home)
    arrivals: dict[str, list[Path]] = {}
    for path in sorted((source / "landing").rglob("*")):
        if path.is_file():
            day = DAY_IN_NAME.search(path.name)
            arrivals.setdefault(day.group(0) if day else "", []).append(path)
    assert len(arrivals) >= 6

    modes = []
    with connect(settings.lake) as con:
        for day in sorted(arrivals):
            for path in arrivals[day]:
                target = settings.landing / path.relative_to(source / "landing")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
            for kind in ("fx", "orders", "statements"):
                ingest_source(con, settings, kind)
            for name in (*LATEST_VERSION_MODELS, "reference_counts"):
                refresh = refresh_model(con, name)
                modes.append((name, refresh.mode, refresh.written, refresh.rows))
                assert differences(con, name) == (0, 0), (day, name, refresh)
            assert differences(con, "reference_cips") == (0, 0), day

    assert [mode for name, mode, _, _ in modes[:3]] == ["full", "full", "full"]
    later = modes[3:]
    assert {mode for _, mode, _, _ in later} <= {"incremental", "unchanged"}
    for model in (*LATEST_VERSION_MODELS, "reference_counts"):
        assert any(name == model and mode == "incremental" and written < rows for name, mode, written, rows in later), model


@pytest.fixture()
def warehouse(tmp_path):
    with connect(Lake.in_folder(tmp_path / "lake")) as con:
        yield con


def cip_row(file_seq: int, line: int, cip: str, status: str, *, origin: str = "csv", operation: str | None = None,
            code: str | None = None) -> str:
    """A raw statement row; its transaction code is `code` (default A<cip>), its reference that code upper-cased."""
    op = "NULL" if operation is None else f"'{operation}'"
    code = code or f"A{cip}"
    return (
        f"('shop', '{cip}', '{code}', '{code.upper()}', {op}, '{status}', 'PEN', 1000, '{origin}', "
        f"'statements/shop/f{file_seq}', {file_seq}, {line})"
    )


def add_statement_rows(con, *rows: str) -> None:
    add_rows(con, "statement_rows", "store_id, cip, transaction_code, reference, operation_number, status, "
             "currency, amount_cents, origin, file, file_seq, line", rows)


def add_rows(con, table: str, columns: str, rows: tuple[str, ...]) -> None:
    con.execute(f"INSERT INTO {table} ({columns}) VALUES " + ", ".join(rows))


def states(con) -> dict[str, str]:
    return dict(con.execute("SELECT cip, status FROM payments").fetchall())


def test_a_notification_delivered_again_in_a_later_file_changes_nothing(warehouse):
    con = warehouse
    add_statement_rows(con, cip_row(1, 1, "1", "pending", origin="notification", operation="op-1"),
                       cip_row(1, 2, "1", "paid", origin="notification", operation="op-2"))
    assert refresh_model(con, "payments").mode == "full"
    # op-1 again (a late retry of the old event): not a new state
    add_statement_rows(con, cip_row(2, 1, "1", "pending", origin="notification", operation="op-1"),
                       cip_row(2, 2, "2", "pending"))
    refresh = refresh_model(con, "payments")
    assert (refresh.mode, refresh.written) == ("incremental", 1)
    assert states(con) == {"1": "paid", "2": "pending"}
    assert differences(con, "payments") == (0, 0)
    # a statement file says otherwise: later files win
    add_statement_rows(con, cip_row(3, 1, "1", "reversed"))
    assert refresh_model(con, "payments").mode == "incremental"
    assert states(con) == {"1": "reversed", "2": "pending"}
    assert refresh_model(con, "payments").mode == "unchanged"


def test_raw_rows_of_applied_files_changing_or_a_changed_model_rebuild_the_table(warehouse, monkeypatch):
    con = warehouse
    add_statement_rows(con, cip_row(1, 1, "1", "paid"), cip_row(2, 1, "2", "paid"))
    assert refresh_model(con, "payments").mode == "full"
    con.execute("DELETE FROM statement_rows WHERE file_seq = 2")  # a file taken back by hand
    refresh = refresh_model(con, "payments")
    assert (refresh.mode, states(con)) == ("full", {"1": "paid"})
    # a file that commits after a later one was applied (its file_seq is lower than the mark)
    add_statement_rows(con, cip_row(3, 1, "3", "paid"))
    assert refresh_model(con, "payments").mode == "incremental"
    add_statement_rows(con, cip_row(2, 1, "2", "expired"))
    assert refresh_model(con, "payments").mode == "full"
    assert states(con) == {"1": "paid", "2": "expired", "3": "paid"}

    import pagorecon_dagster.warehouse.duckdb as warehouse_module

    changed = model_sql("payments") + "\n-- a new version of the model"
    monkeypatch.setattr(warehouse_module, "model_sql", lambda name: changed if name == "payments" else model_sql(name))
    assert refresh_model(con, "payments").mode == "full"


def order_row(file_seq: int, line: int, order_id: str, *, pagoefectivo: bool = True) -> str:
    method = "PagoEfectivo" if pagoefectivo else "Visa"
    return (
        f"('shop', '{order_id}', '{order_id.upper()}', TIMESTAMPTZ '2026-07-14 10:00:00-05', DATE '2026-07-14', 'pending', "
        f"'PEN', 1000, '{method}', {str(pagoefectivo).upper()}, 1, 'orders/shop/f{file_seq}', {file_seq}, {line})"
    )


def add_order_rows(con, *rows: str) -> None:
    add_rows(con, "order_rows", "store_id, order_id, reference, created_at, business_date, status, currency, total_cents, "
             "payment_method, is_pagoefectivo, line_items, file, file_seq, line", rows)


def counts(con) -> dict[str, tuple[int, int]]:
    return {ref: (orders, cips) for ref, orders, cips in
            con.execute("SELECT reference, order_count, cip_count FROM reference_counts").fetchall()}


def refresh_all(con) -> str:
    for name in LATEST_VERSION_MODELS:
        refresh_model(con, name)
    mode = refresh_model(con, "reference_counts").mode
    assert differences(con, "reference_counts") == (0, 0)
    assert differences(con, "reference_cips") == (0, 0)
    assert con.execute("SELECT count(*) FROM touched_references").fetchone()[0] == 0
    return mode


def test_reference_counts_follow_orders_and_cips_that_change_reference_or_payment_method(warehouse):
    con = warehouse
    add_order_rows(con, order_row(1, 1, "a1"), order_row(1, 2, "b1"))
    add_statement_rows(con, cip_row(2, 1, "1", "paid", code="a1"))
    assert refresh_all(con) == "full"
    assert counts(con) == {}  # one order with one CIP or none: no reference needs more
    # a second CIP for A1, and an orphan CIP
    add_statement_rows(con, cip_row(3, 1, "2", "pending", code="A1"), cip_row(3, 2, "9", "paid"))
    assert refresh_all(con) == "incremental"
    assert counts(con) == {"A1": (1, 2), "A9": (0, 1)}
    assert sorted(con.execute("SELECT cip, reference FROM reference_cips").fetchall()) == [("1", "A1"), ("2", "A1"), ("9", "A9")]
    # CIP 2 restated under another reference: A1 is one-to-one again, B1 now has its CIP
    add_statement_rows(con, cip_row(4, 1, "2", "paid", code="b1"))
    assert refresh_all(con) == "incremental"
    assert counts(con) == {"A9": (0, 1)}
    # order A1 restated as paid by card: its CIP has no PagoEfectivo order left; a second order shares B1
    add_order_rows(con, order_row(5, 1, "a1", pagoefectivo=False), order_row(5, 2, "B1"))
    assert refresh_all(con) == "incremental"
    assert counts(con) == {"A1": (0, 1), "A9": (0, 1), "B1": (2, 1)}
    assert refresh_all(con) == "unchanged"
    # orders rebuilt whole (a file taken back by hand): every reference is counted again
    con.execute("DELETE FROM order_rows WHERE file_seq = 5")
    assert refresh_all(con) == "full"
    assert counts(con) == {"A9": (0, 1)}


def test_a_rebuild_goes_store_by_store_to_the_table_the_whole_model_gives_in_its_order(warehouse):
    con = warehouse
    rows = [order_row(1, line, f"o{line}") for line in range(1, 7)]
    stores = ["tacna", "ica", "piura"]
    add_order_rows(con, *(row.replace("('shop'", f"('{stores[i % 3]}'", 1) for i, row in enumerate(rows)))
    # a later file's version of tacna's o1
    add_order_rows(con, order_row(2, 1, "o1").replace("('shop'", "('tacna'", 1).replace("'pending'", "'completed'"))

    con.execute("SET VARIABLE only_store = 'ica'")
    assert {store for (store,) in con.execute(f"SELECT store_id FROM ({model_sql('orders')})").fetchall()} == {"ica"}
    con.execute("RESET VARIABLE only_store")

    assert refresh_model(con, "orders").mode == "full"
    assert differences(con, "orders") == (0, 0)
    assert con.execute("SELECT getvariable('only_store')").fetchone()[0] is None
    stored = con.execute("SELECT store_id, business_date, order_id, status FROM orders").fetchall()
    assert stored == sorted(stored, key=lambda r: r[:3])
    assert [r[0] for r in stored] == ["ica", "ica", "piura", "piura", "tacna", "tacna"]
    assert ("tacna", dt.date(2026, 7, 14), "o1", "completed") in stored
