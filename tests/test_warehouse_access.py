"""Reading the warehouse never holds up a run, and a run never holds up a reader: `pagorecon sql`
(README.md, Reading the warehouse) and the read-only refunds commands open the warehouse
read-only and read the last whole commit; nobody waits for a lock; two first runs in a new home at
once both succeed."""

import decimal
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pagorecon_dagster.cli import main

HOLD = (
    "import os, sys\n"
    "from pagorecon_dagster.warehouse.duckdb import connect, home_lake\n"
    "with connect(home_lake(sys.argv[1]), read_only=sys.argv[2] == 'ro') as con:\n"
    "    con.execute('BEGIN')\n"
    "    if sys.argv[2] == 'rw':  # a run half-way through rewriting the items, not committed\n"
    "        con.execute('DELETE FROM recon_item_rows')\n"
    "    else:  # a reader in the middle of its transaction\n"
    "        con.execute('SELECT count(*) FROM recon_item_rows').fetchall()\n"
    "    print(os.getpid(), flush=True)\n"
    "    sys.stdin.readline()\n"
    "    con.execute('ROLLBACK')\n"
)


def hold(home: Path, mode: str) -> tuple[subprocess.Popen, int]:
    """Another process in the middle of a transaction on the warehouse (rw: a run that has deleted
    every item and not committed; ro: a reader); it lets go when its stdin is closed."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(home), mode],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return holder, int(holder.stdout.readline())


def pagorecon(home, *args, timeout=120, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pagorecon_dagster.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def reconciled(home):
    home.orders(
        """\
        A1,2026-07-14 10:00:00,paid,PEN,100.00,0.00,PagoEfectivo,,ana@example.pe,12345678
        A2,2026-07-15 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,
        """
    )
    home.statements(
        "90000001,A1,,paid,PEN,100.00,3.50,0.63,2026-07-14T10:01:00-05:00,,2026-07-14T12:00:00-05:00,BCP,DNI,12345678,\n"
    )
    home.drop("fx/sbs.csv", "date,currency,buy,sell\n2026-07-14,USD,3.740,3.745\n")
    home.run("2026-07-14", "2026-07-15")
    return home


def test_sql_json_keeps_column_order_iso_dates_and_exact_numbers(reconciled, capsys):
    query = ("SELECT order_id, business_date, order_total_cents, status, paid_amount_cents,"
             " CAST(9007199254740993 AS BIGINT) AS big, (SELECT sell FROM fx_rates) AS sell"
             " FROM recon_items ORDER BY order_id")
    assert main(["--home", str(reconciled.path), "sql", "--format", "json", query]) == 0
    out = capsys.readouterr().out
    rows = json.loads(out, parse_float=decimal.Decimal)
    assert rows == [
        {"order_id": "A1", "business_date": "2026-07-14", "order_total_cents": 10000, "status": "MATCHED",
         "paid_amount_cents": 10000, "big": 9007199254740993, "sell": decimal.Decimal("3.745")},
        {"order_id": "A2", "business_date": "2026-07-15", "order_total_cents": 5000, "status": "AWAITING_PAYMENT",
         "paid_amount_cents": None, "big": 9007199254740993, "sell": decimal.Decimal("3.745")},
    ]
    assert list(rows[0]) == ["order_id", "business_date", "order_total_cents", "status", "paid_amount_cents", "big", "sell"]
    assert "9007199254740993" in out and "3.745" in out  # written exactly, not through a float


def test_sql_csv_is_a_header_line_then_rows_and_table_is_for_people(reconciled, capsys):
    query = "SELECT store_id, business_date, status, items FROM recon_daily_summary WHERE store_id = 'shop' ORDER BY business_date"
    assert main(["--home", str(reconciled.path), "sql", "--format", "csv", query]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "store_id,business_date,status,items",
        "shop,2026-07-14,MATCHED,1",
        "shop,2026-07-15,AWAITING_PAYMENT,1",
    ]
    assert main(["--home", str(reconciled.path), "sql", query]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["store_id", "business_date", "status", "items"]
    assert table[2].split() == ["shop", "2026-07-14", "MATCHED", "1"] and table[-1] == "(2 rows)"


def test_sql_query_error_exits_2_with_the_database_message(reconciled, capsys):
    assert main(["--home", str(reconciled.path), "sql", "SELECT * FROM no_such_table"]) == 2
    err = capsys.readouterr().err
    assert "Table with name no_such_table does not exist" in err


@pytest.mark.parametrize("query", [
    "DELETE FROM recon_items",
    "CREATE TABLE scratch AS SELECT 1 AS x",
    "COPY recon_items TO 'stolen.csv'",
])
def test_sql_refuses_a_query_that_writes(reconciled, capsys, query, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = reconciled.query("SELECT count(*) AS n FROM recon_items")
    assert main(["--home", str(reconciled.path), "sql", query]) == 2
    assert capsys.readouterr().err.startswith("pagorecon sql: ")
    assert reconciled.query("SELECT count(*) AS n FROM recon_items") == before == [{"n": 2}]
    assert not reconciled.query("SELECT table_name FROM information_schema.tables WHERE table_name = 'scratch' AND table_catalog = current_database()")
    assert not (tmp_path / "stolen.csv").exists()


@pytest.mark.new_home  # the warehouse must not appear
def test_sql_in_a_home_with_no_warehouse_says_what_to_do(home, capsys):
    assert main(["--home", str(home.path), "sql", "SELECT 1"]) == 2
    err = capsys.readouterr().err
    assert "no warehouse at" in err and "pagorecon run" in err
    assert not (home.path / "warehouse").exists()  # a reader creates nothing


@pytest.mark.parametrize("command", [
    ["sql", "SELECT count(*) FROM recon_items"],
    ["refunds", "list"],
    ["refunds", "show", "R-none"],
    ["refunds", "verify-audit"],
])
def test_read_only_commands_share_the_warehouse_with_another_reader(reconciled, command):
    """A reader in another process holds nothing anyone waits for."""
    holder, _ = hold(reconciled.path, "ro")
    try:
        started = time.monotonic()
        done = pagorecon(reconciled.path, *command, timeout=60)
        assert time.monotonic() - started < 30
        assert "waiting for the warehouse" not in done.stderr
        assert done.returncode in (0, 1), done.stderr  # `show` of an unknown refund is a refusal (1)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def run_while_held(home, *args, env=None, holding: str = "rw") -> tuple[int, float, str, str]:
    """Run `pagorecon ARGS` while another process is half-way through a transaction (rw: one that
    deleted every item; ro: a reader's); returns the exit code, the seconds it took, stdout and stderr."""
    holder, _ = hold(home.path, holding)
    try:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "pagorecon_dagster.cli", "--home", str(home.path), *args],
                              capture_output=True, text=True, env=env, timeout=300)
        return done.returncode, time.monotonic() - started, done.stdout, done.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_sql_never_waits_for_a_running_job_and_sees_only_whole_commits(reconciled):
    code, seconds, out, err = run_while_held(reconciled, "sql", "--format", "csv", "SELECT count(*) AS n FROM recon_items")
    assert code == 0, err
    assert out.splitlines() == ["n", "2"]  # the other process's delete is not committed: not seen
    assert "waiting" not in err and seconds < 60


def test_a_run_never_waits_for_a_reader_holding_a_long_query(reconciled):
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    code, seconds, _, err = run_while_held(reconciled, "run", "--start", "2026-07-14", "--end", "2026-07-14", "--store", "shop", env=env, holding="ro")
    assert code == 0, err[-3000:]
    assert "waiting" not in err and seconds < 120
    assert reconciled.query("SELECT count(*) AS n FROM recon_items") == [{"n": 2}]


FIRST_USE = (
    "import sys, time\n"
    "from pagorecon_dagster.cli import _instance\n"
    "from pagorecon_dagster.config import load_settings\n"
    "settings = load_settings(sys.argv[1])\n"
    "while time.time() < float(sys.argv[2]):\n"
    "    pass\n"
    "instance = _instance(settings)\n"
    "instance.get_runs(limit=1)\n"
    "print('ok')\n"
)


def test_first_runs_in_a_new_home_at_once_all_get_the_dagster_instance(home):
    """What every `pagorecon run` does first, in six processes started at the same instant."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}  # each makes the home's own instance
    start = time.time() + 8  # after every process has imported dagster
    procs = [subprocess.Popen([sys.executable, "-c", FIRST_USE, str(home.path), str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(6)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err[-1500:] for _, err in outputs if err.strip()]
    assert [out for out, _ in outputs] == ["ok\n"] * 6

