"""What the lake answers must be what its rows say. DuckDB 1.5.5's DuckLake answers a whole-table
min()/max() from column statistics; with data inlining on, rows inserted and deleted in one
transaction stayed in those statistics (an empty `fx_fetches` had a min(start_date) of 2000-01-01).
These run on the warehouse as pagorecon attaches it."""

from __future__ import annotations

import json

import pytest

from pagorecon_dagster.warehouse.duckdb import STATISTICS_MARK, connect, give_statistics, lake_tables, transaction
from pagorecon_dagster.warehouse.lake import Lake, close_all


@pytest.fixture
def con(tmp_path):
    with connect(Lake.in_folder(tmp_path / "warehouse")) as con:
        yield con


def test_a_table_created_empty_has_no_minimum(con):
    # made by the schema, given statistics by a row added and removed in the same transaction
    assert con.execute("SELECT count(*), min(start_date), max(end_date) FROM fx_fetches").fetchone() == (0, None, None)


def test_rows_removed_by_the_transaction_that_added_them_leave_no_trace_in_min_and_max(con):
    con.execute("CREATE TABLE amounts (cents BIGINT)")
    with transaction(con):
        con.execute("INSERT INTO amounts VALUES (1), (5000), (99999)")
        con.execute("DELETE FROM amounts WHERE cents <> 5000")
    assert con.execute("SELECT min(cents), max(cents), count(*) FROM amounts").fetchone() == (5000, 5000, 1)
    with transaction(con):
        con.execute("INSERT INTO amounts VALUES (7)")
        con.execute("DELETE FROM amounts")
    assert con.execute("SELECT min(cents), max(cents), count(*) FROM amounts").fetchone() == (None, None, 0)


def test_a_window_replaced_again_and_again_keeps_one_row_per_key(con):
    # the reruns' pattern: the same keys deleted and inserted again, a small batch each time
    con.execute("CREATE TABLE items (k INTEGER, v BIGINT)")
    for turn in range(30):
        with transaction(con):
            con.execute("DELETE FROM items WHERE k < 5")
            con.execute("INSERT INTO items SELECT range, ? FROM range(5)", [turn])
    assert con.execute("SELECT count(*), count(DISTINCT k), min(v), max(v) FROM items").fetchone() == (5, 5, 29, 29)


def _metadata(con) -> str:
    return f"__ducklake_metadata_{con.execute('SELECT current_database()').fetchone()[0]}"


def test_every_table_of_a_new_warehouse_has_statistics_and_no_rows_but_its_seeds(con):
    # an empty table without statistics costs one catalog query per column on every read
    tables = lake_tables(con)
    without = con.execute(
        f"SELECT t.table_name FROM {_metadata(con)}.ducklake_table AS t "
        f"LEFT JOIN {_metadata(con)}.ducklake_table_stats AS s USING (table_id) "
        "WHERE t.end_snapshot IS NULL AND s.table_id IS NULL").fetchall()
    assert without == []
    marked = [name for name in tables if con.execute(
        f"SELECT count(*) FROM {name} AS t WHERE contains(CAST(t AS VARCHAR), ?)", [STATISTICS_MARK]).fetchone()[0]]
    assert marked == []
    assert con.execute("SELECT count(*) FROM refunds").fetchone()[0] == 0


def test_marked_rows_left_by_a_crash_are_removed_by_the_next_open(tmp_path):
    lake = Lake.in_folder(tmp_path / "warehouse")
    with connect(lake) as con:
        give_statistics(con, "alerts")  # committed, as if the process died before removing it
        con.execute("DELETE FROM schema_version")
        assert con.execute("SELECT count(*) FROM alerts").fetchone()[0] == 1
    close_all()
    with connect(lake, read_only=False) as con:
        assert con.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1


def test_a_window_of_one_store_reads_only_that_stores_files(con):
    # order_rows is partitioned by store: a store's rows are in its own files. A filter DuckLake can
    # prune on skips the others; list_contains alone read every store's files.
    con.execute(
        """INSERT INTO order_rows (store_id, order_id, reference, created_at, business_date, status, currency,
               total_cents, is_pagoefectivo, line_items, file, file_seq, line)
           SELECT store, 'o' || i, 'O' || i, TIMESTAMPTZ '2026-07-14 10:00:00-05', DATE '2026-07-14', 'paid', 'PEN',
               100, true, 1, 'orders/' || store || '/f.csv', 1, i
           FROM (VALUES ('ica'), ('piura'), ('tacna')) AS s(store), range(3) AS r(i)"""
    )
    con.execute("SET VARIABLE start_date = DATE '2026-07-01'")
    con.execute("SET VARIABLE end_date = DATE '2026-07-31'")

    def scanned(stores: list[str]) -> tuple[int, set[str]]:
        con.execute("SET VARIABLE stores = ?", [stores])
        count = con.execute("SELECT count(*) FROM order_rows WHERE in_window(store_id, business_date)").fetchone()[0]
        plan = json.loads(con.execute(
            "EXPLAIN (ANALYZE, FORMAT json) SELECT count(*) FROM order_rows WHERE in_window(store_id, business_date)"
        ).fetchall()[0][1])
        files = " ".join(str(scan["extra_info"].get("Filename(s)", "")) for scan in _scans(plan))
        return count, {store for store in ("ica", "piura", "tacna") if f"/store_id={store}/" in files}

    assert scanned(["piura"]) == (3, {"piura"})
    count, files = scanned(["ica", "tacna"])  # a range of stores: what lies between is read, not counted
    assert count == 6 and {"ica", "tacna"} <= files
    assert scanned([]) == (0, set())


def _scans(node: dict):
    if node.get("operator_type") == "TABLE_SCAN":
        yield node
    for child in node.get("children", []):
        yield from _scans(child)
