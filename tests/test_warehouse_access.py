"""Reading the warehouse never holds up a run, and a run never holds up a reader for good:
`pagorecon sql` (README.md, Reading the warehouse) and the read-only refunds commands open the
warehouse read-only; a command that has to wait for the warehouse says so on stderr, naming who holds it; two first
runs in a new home at once both succeed."""

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
    "import duckdb, os, sys, time\n"
    "con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro')\n"
    "print(os.getpid(), flush=True)\n"
    "sys.stdin.readline() if float(sys.argv[3]) < 0 else time.sleep(float(sys.argv[3]))\n"
)


def hold(warehouse: Path, mode: str, seconds: float = -1) -> tuple[subprocess.Popen, int]:
    """Another process that holds the warehouse (rw: as a run does; ro: as a reader does); with
    `seconds` it lets go by itself after that long, else when its stdin is closed."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(warehouse), mode, str(seconds)],
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


def test_sql_in_a_home_with_no_warehouse_says_what_to_do(home, capsys):
    assert main(["--home", str(home.path), "sql", "SELECT 1"]) == 2
    err = capsys.readouterr().err
    assert "no warehouse at" in err and "pagorecon run" in err
    assert not (home.path / "warehouse.duckdb").exists()  # a reader creates nothing


@pytest.mark.parametrize("command", [
    ["sql", "SELECT count(*) FROM recon_items"],
    ["refunds", "list"],
    ["refunds", "show", "R-none"],
    ["refunds", "verify-audit"],
])
def test_read_only_commands_share_the_warehouse_with_another_reader(reconciled, command):
    """Read-write, these commands would wait for the reader to finish; read-only they share the file."""
    holder, _ = hold(reconciled.path / "warehouse.duckdb", "ro")
    try:
        started = time.monotonic()
        done = pagorecon(reconciled.path, *command, timeout=60)
        assert time.monotonic() - started < 30
        assert "waiting for the warehouse" not in done.stderr
        assert done.returncode in (0, 1), done.stderr  # `show` of an unknown refund is a refusal (1)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def run_while_held(home, *args, env=None) -> tuple[int, int, str, str]:
    """Run `pagorecon ARGS` while another process holds the warehouse read-write; the holder lets go
    once the command says it waits (or after 60 s). Returns the holder's PID, exit code, stdout, stderr."""
    holder, pid = hold(home.path / "warehouse.duckdb", "rw")
    release = threading.Timer(60, holder.stdin.close)
    release.start()
    proc = subprocess.Popen([sys.executable, "-m", "pagorecon_dagster.cli", "--home", str(home.path), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if "waiting for the warehouse" in line:
                break
    finally:
        release.cancel()
        if not holder.stdin.closed:
            holder.stdin.close()
        holder.wait(timeout=30)
    out, rest = proc.communicate(timeout=300)
    return pid, proc.returncode, out, "".join(seen) + rest


def test_sql_waits_for_a_running_job_and_says_so(reconciled):
    pid, code, out, err = run_while_held(reconciled, "sql", "--format", "csv", "SELECT count(*) AS n FROM recon_items")
    assert code == 0, err
    assert out.splitlines() == ["n", "2"]
    assert "waiting for the warehouse" in err and f"(PID {pid})" in err and "minutes" in err


def test_a_run_that_waits_for_the_warehouse_says_so(reconciled):
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    pid, code, _, err = run_while_held(reconciled, "run", "--start", "2026-07-14", "--end", "2026-07-14", "--store", "shop", env=env)
    assert code == 0, err[-3000:]
    assert "waiting for the warehouse" in err and f"(PID {pid})" in err


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

