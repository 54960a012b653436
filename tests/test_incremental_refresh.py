"""orders and payments read only the files ingested since their last refresh, and always hold
exactly what a rebuild from every raw row would (dbt_like_sql/orders.sql, payments.sql)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.ingestion.loader import ingest_source
from pagorecon_dagster.reconciliation.models import LATEST_VERSION_MODELS, refresh_model
from pagorecon_dagster.sandbox.generator import generate
from pagorecon_dagster.warehouse.duckdb import connect, model_sql

DAY_IN_NAME = re.compile(r"\d{4}-\d{2}-\d{2}")


def differences(con, name: str) -> tuple[int, int]:
    """Rows only in the table, rows only in a rebuild from all raw rows."""
    con.execute("RESET VARIABLE after_file_seq")
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
    with connect(settings.warehouse_path) as con:
        for day in sorted(arrivals):
            for path in arrivals[day]:
                target = settings.landing / path.relative_to(source / "landing")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
            for kind in ("fx", "orders", "statements"):
                ingest_source(con, settings, kind)
            for name in LATEST_VERSION_MODELS:
                refresh = refresh_model(con, name)
                modes.append((name, refresh.mode, refresh.written, refresh.rows))
                assert differences(con, name) == (0, 0), (day, name, refresh)

    assert [mode for name, mode, _, _ in modes[:2]] == ["full", "full"]
    later = modes[2:]
    assert {mode for _, mode, _, _ in later} <= {"incremental", "unchanged"}
    assert any(mode == "incremental" and written < rows for _, mode, written, rows in later)


@pytest.fixture()
def warehouse(tmp_path):
    with connect(tmp_path / "warehouse.duckdb") as con:
        yield con


def cip_row(file_seq: int, line: int, cip: str, status: str, *, origin: str = "csv", operation: str | None = None) -> str:
    op = "NULL" if operation is None else f"'{operation}'"
    return (
        f"('shop', '{cip}', 'A{cip}', 'A{cip}', {op}, '{status}', 'PEN', 1000, '{origin}', "
        f"'statements/shop/f{file_seq}', {file_seq}, {line})"
    )


def add_statement_rows(con, *rows: str) -> None:
    con.execute(
        "INSERT INTO statement_rows (store_id, cip, transaction_code, reference, operation_number, status, "
        "currency, amount_cents, origin, file, file_seq, line) VALUES " + ", ".join(rows)
    )


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
