"""`pagorecon maintain` keeps the lake small without changing a row; `pagorecon migrate` (and the
first run of a home) moves an earlier version's warehouse.duckdb into the lake
(docs/operations.md, Maintenance; Moving a home from warehouse.duckdb)."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import shutil
import time
from pathlib import Path

import duckdb
import pytest
import yaml

from pagorecon_dagster import cli
from pagorecon_dagster.config import load_settings
from pagorecon_dagster.definitions import build_definitions
from pagorecon_dagster.sandbox.generator import generate
from pagorecon_dagster.warehouse.duckdb import connect
from pagorecon_dagster.warehouse import lake as lake_module
from pagorecon_dagster.warehouse.lake import Lake
from pagorecon_dagster.warehouse.maintain import FILE_GRACE, files, maintain, report

LEGACY = Path(__file__).parent / "fixtures" / "legacy"


def contents(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, str]]:
    """Every table's row count and a digest of its sorted rows."""
    tables = [t for (t,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() ORDER BY 1").fetchall()]
    out = {}
    for table in tables:
        rows = sorted(repr(r) for r in con.execute(f"SELECT * FROM {table}").fetchall())
        out[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return out


def test_maintain_merges_small_files_and_keeps_every_row(tmp_path, monkeypatch):
    # an earlier version kept small inserts inlined in the catalog; maintain writes them out
    monkeypatch.setattr(lake_module, "INLINE_ROWS", 1000)
    lake = Lake.in_folder(tmp_path / "lake")
    with connect(lake) as con:
        for n in range(12):  # big enough to be written as a Parquet file each
            con.execute("INSERT INTO quarantine SELECT 'statements', 'shop', ?, range, '{}', 'amount: not a number', ? FROM range(1200)",
                        [f"statements/shop/f{n}.csv", n])
        for n in range(5):  # small: kept in the catalog until maintain writes them out
            con.execute("INSERT INTO counters VALUES (?, ?)", [f"extra{n}", n])
        before, files_before = contents(con), files(con)
        done = maintain(con, 30)
        assert contents(con) == before
        assert done.flushed and sum(rows for table, rows in done.flushed if table == "counters") >= 5
        assert sum(n for table, n, _m in done.merged if table == "quarantine") == 12
        assert files(con).data < files_before.data + len(done.flushed)
        quarantine_files = con.execute(
            "SELECT count(*) FROM ducklake_list_files(current_database(), 'quarantine')").fetchone()[0]
        assert quarantine_files == 1
        text = "\n".join(report(done, 30))
        assert "files merged: 12 into 1" in text and "files after:" in text

        # a day later the merged-away files are unreferenced past the grace: they are removed from disk
        on_disk = len(list((tmp_path / "lake" / "data").rglob("*.parquet")))
        later = maintain(con, 30, now=dt.datetime.now(dt.timezone.utc) + 2 * FILE_GRACE)
        assert len(later.removed) >= 12 and later.removed_bytes and later.removed_bytes > 0
        assert len(list((tmp_path / "lake" / "data").rglob("*.parquet"))) == on_disk - len(later.removed) - len(later.orphaned)
        assert contents(con) == before


def test_maintain_expires_snapshots_older_than_the_retention_and_keeps_newer(tmp_path):
    lake = Lake.in_folder(tmp_path / "lake")
    with connect(lake) as con:
        con.execute("INSERT INTO counters VALUES ('old', 1)")
        old = con.execute("SELECT max(snapshot_id) FROM ducklake_snapshots(current_database())").fetchone()[0]
        time.sleep(1.1)
        boundary = dt.datetime.now(dt.timezone.utc)
        time.sleep(1.1)
        for n in range(3):
            con.execute("INSERT INTO counters VALUES (?, 2)", [f"new{n}"])
        newer = [s for (s,) in con.execute("SELECT snapshot_id FROM ducklake_snapshots(current_database()) WHERE snapshot_id > ?", [old]).fetchall()]
        preview = maintain(con, 30, dry_run=True, now=boundary + dt.timedelta(days=30))
        assert {s for s, _t in preview.expired} == set(range(old + 1))
        assert con.execute("SELECT count(*) FROM ducklake_snapshots(current_database())").fetchone()[0] == old + 1 + len(newer)

        done = maintain(con, 30, now=boundary + dt.timedelta(days=30))
        assert {s for s, _t in done.expired} == set(range(old + 1))
        kept = {s for (s,) in con.execute("SELECT snapshot_id FROM ducklake_snapshots(current_database())").fetchall()}
        assert set(newer) <= kept and not kept & set(range(old + 1))
        with pytest.raises(duckdb.Error):
            con.execute(f"SELECT * FROM counters AT (VERSION => {old})").fetchall()
        assert con.execute(f"SELECT count(*) FROM counters AT (VERSION => {newer[-1]})").fetchone()[0] >= 4


def test_the_weekly_maintain_schedule_is_in_the_definitions_with_the_configured_time(home):
    config = yaml.safe_load((home.path / "pagorecon.yaml").read_text())
    config["warehouse"] = {"snapshot_retention_days": 45, "maintain": {"day": 3, "hour": 5}}
    (home.path / "pagorecon.yaml").write_text(yaml.safe_dump(config))
    definitions = build_definitions(load_settings(home.path))
    schedule = definitions.resolve_schedule_def("weekly_maintain")
    assert schedule.cron_schedule == "0 5 * * 3"
    assert schedule.execution_timezone == "America/Lima"
    assert schedule.job_name == "maintain"
    result = definitions.resolve_job_def("maintain").execute_in_process()
    assert result.success


# -- moving an earlier version's warehouse.duckdb -----------------------------------------------------

def legacy_home(root: Path) -> Path:
    """The sandbox the fixture was made from, with the warehouse.duckdb that version wrote."""
    home = root / "home"
    generate(home, stores=2, days=6, orders_per_day=5, seed=11)
    with gzip.open(LEGACY / "warehouse-e9ce8bc.duckdb.gz") as packed, open(home / "warehouse.duckdb", "wb") as out:
        shutil.copyfileobj(packed, out)
    (home / "archive").mkdir()
    shutil.copyfile(LEGACY / "audit-anchor.log", home / "archive" / "audit-anchor.log")  # the home's seal of its audit chain
    return home


def old_counts(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for (t,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()}
    finally:
        con.close()


def test_migrate_moves_every_table_with_its_rows_and_keeps_the_old_file(tmp_path, capsys):
    home = legacy_home(tmp_path)
    original = (home / "warehouse.duckdb").read_bytes()
    counts = old_counts(home / "warehouse.duckdb")

    assert cli.main(["--home", str(home), "sql", "SELECT 1"]) == cli.EXIT_USAGE
    assert "pagorecon migrate" in capsys.readouterr().err  # a reader is told to move it first

    assert cli.main(["--home", str(home), "migrate"]) == 0
    out = capsys.readouterr().out
    printed = {line.split()[0]: (int(line.split()[1]), int(line.split()[2]))
               for line in out.splitlines()[1:] if len(line.split()) == 3 and line.split()[1].isdigit()}
    for table in ("ingested_files", "statement_rows", "order_rows", "recon_item_rows", "recon_daily_summary",
                  "refunds", "audit_log", "alerts", "quarantine", "report_emails"):
        assert printed[table] == (counts[table], counts[table]) and counts[table] > 0, table

    moved = list(home.glob("warehouse.duckdb.migrated-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == original and not (home / "warehouse.duckdb").exists()
    with connect(load_settings(home).lake, read_only=True) as con:
        for table, (old, new) in printed.items():
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == old == new
        assert con.execute("SELECT count(*) FROM recon_items").fetchone()[0] == counts["recon_item_rows"]
        # the next landing file is numbered after every file the old sequence numbered
        assert con.execute("SELECT value FROM counters WHERE name = 'file_seq'").fetchone()[0] >= \
            con.execute("SELECT max(file_seq) FROM ingested_files").fetchone()[0]
    assert cli.main(["--home", str(home), "refunds", "verify-audit"]) == 0
    capsys.readouterr()

    # once only: no file left to move; a file put back beside a lake with data needs --force
    assert cli.main(["--home", str(home), "migrate"]) == 2
    shutil.copyfile(moved[0], home / "warehouse.duckdb")
    assert cli.main(["--home", str(home), "migrate"]) == 2
    assert "--force" in capsys.readouterr().err
    assert cli.main(["--home", str(home), "migrate", "--force"]) == 0
    assert len(list(home.glob("warehouse.duckdb.migrated-*"))) == 2


def test_a_file_a_newer_duckdb_wrote_is_refused_with_what_to_do(tmp_path, capsys):
    home = legacy_home(tmp_path)
    path = home / "warehouse.duckdb"
    with gzip.open(LEGACY / "written-by-duckdb-2.0.1.duckdb.gz") as packed:
        data = packed.read()
    path.write_bytes(data)
    assert cli.main(["--home", str(home), "migrate"]) == 2
    err = capsys.readouterr().err
    assert "newer DuckDB" in err and "Moving a home from warehouse.duckdb" in err
    assert path.read_bytes() == data  # untouched, and still there


def test_the_first_run_of_an_old_home_moves_its_warehouse_and_a_rerun_gives_the_same_reports(tmp_path, capsys, monkeypatch):
    home = legacy_home(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    counts = old_counts(home / "warehouse.duckdb")
    assert cli.main(["--home", str(home), "run", "--start", "2026-07-13", "--end", "2026-07-18"]) == 0
    assert "moving" in capsys.readouterr().err
    assert not (home / "warehouse.duckdb").exists() and list(home.glob("warehouse.duckdb.migrated-*"))
    with connect(load_settings(home).lake, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ingested_files").fetchone()[0] == counts["ingested_files"]  # nothing taken in twice
        assert con.execute("SELECT count(*) FROM recon_items").fetchone()[0] == counts["recon_item_rows"]
    for expected in sorted((LEGACY / "reports").glob("*.csv")):
        written = home / "reports" / "daily" / "2026-07" / expected.name
        assert written.read_bytes() == expected.read_bytes(), expected.name
