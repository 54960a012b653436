"""`pagorecon run` with nothing new since the last complete run of its window starts no Dagster run
(orchestration/nothing_new.py); anything the run reads that moved makes it a whole run again."""

import datetime as dt
import re

import dagster as dg
import pytest

from pagorecon_dagster.cli import EXIT_OK, main
from pagorecon_dagster.config import load_settings
from pagorecon_dagster.orchestration import nothing_new
from pagorecon_dagster.warehouse.duckdb import connect, home_lake

NOTHING_NEW = "Nothing new since the run of shop, 2026-07-14..2026-07-15"


@pytest.fixture
def cli(home, capsys, monkeypatch, tmp_path):
    """`pagorecon run --store shop` over 07-14..07-15 of a home with a day of orders and payments;
    returns (whether it started no run, what it printed), after checking it ended well."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    home.orders("A1,2026-07-14 10:00:00,paid,PEN,100.00,0.00,PagoEfectivo,,,\nA2,2026-07-15 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,\n")
    home.statements("90000001,A1,,paid,PEN,100.00,,,2026-07-14T10:01:00-05:00,,2026-07-14T12:00:00-05:00,BCP,,,\n")

    def runs_in_dagster() -> int:
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            return instance.get_runs_count()

    def run(*extra: str) -> tuple[bool, str]:
        before = runs_in_dagster()
        code = main(["--home", str(home.path), "run", "--store", "shop", "--start", "2026-07-14", "--end", "2026-07-15", *extra])
        printed = capsys.readouterr().out
        assert code == EXIT_OK, printed
        started_none = runs_in_dagster() == before
        assert started_none == (NOTHING_NEW in printed), printed
        return started_none, printed

    return run


def summary(printed: str) -> str:
    return printed[printed.index("Reconciled "):]


def test_a_second_run_with_nothing_new_starts_none_and_prints_the_same_summary(cli):
    first, _ = cli()       # loads the files: a run that loaded something leaves no record
    second, whole = cli()  # nothing new, but only a whole run can tell: it leaves the record
    third, printed = cli()
    assert (first, second, third) == (False, False, True)
    assert "MATCHED" in whole and summary(printed) == summary(whole)
    assert "Quarantined rows: 0 new" in printed


def reusable(home) -> bool:
    """What `pagorecon run` asks before it starts anything: is the window's record still current?"""
    settings = load_settings(home.path)
    day1, day2 = dt.date(2026, 7, 14), dt.date(2026, 7, 15)
    record = nothing_new.recorded(settings, ["shop"], day1, day2, nothing_new.now_lima())
    if record is None:
        return False
    with connect(home_lake(home.path)) as con:
        return nothing_new.still_current(con, record)


def test_whatever_a_run_reads_that_moved_makes_it_a_whole_run_again(cli, home, monkeypatch):
    cli(), cli()
    assert reusable(home) and cli()[0]

    # The Lima hour moved (an SBS rate or a statement may have fallen due); moved back, the record
    # holds again. pagorecon.yaml likewise. (The question is the one `pagorecon run` asks.)
    now = nothing_new.now_lima()
    monkeypatch.setattr(nothing_new, "now_lima", lambda: now + dt.timedelta(hours=1))
    assert not reusable(home)
    monkeypatch.setattr(nothing_new, "now_lima", lambda: now)
    config = (home.path / "pagorecon.yaml").read_bytes()
    home.config(fx_tolerance_pct=2.0)
    assert not reusable(home)
    (home.path / "pagorecon.yaml").write_bytes(config)
    assert reusable(home) and cli()[0]

    # a report was removed: the run writes it again
    report = next((home.path / "reports").rglob("*.html"))
    report.unlink()
    assert not cli()[0] and report.exists()
    assert cli()[0]

    # another process committed to the warehouse
    with connect(home_lake(home.path)) as con:
        con.execute("CREATE TABLE scratch AS SELECT 1 AS one")
    assert not reusable(home)
    # asked to: a whole run, which leaves the record again
    assert not cli("--force")[0]
    assert cli()[0]

    # a file landed: the run loads it, which leaves no record, and the one after is whole again
    home.statements("90000002,A2,,paid,PEN,50.00,,,2026-07-15T10:01:00-05:00,,2026-07-15T12:00:00-05:00,BCP,,,\n", name="late.csv")
    assert not cli()[0]
    assert not cli()[0]
    started_none, printed = cli()
    assert started_none and re.search(r"MATCHED +2\n", printed), printed


def test_a_run_that_shared_its_time_with_other_writers_leaves_no_record(home):
    """Commits after the snapshot a run started from that touched more than a run derives
    (a notification, a payout, an approval) mean its reports may not have seen them."""
    settings = load_settings(home.path)
    day = dt.date(2026, 7, 14)
    inputs = nothing_new.inputs_fingerprint(settings, ["shop"], day, day, nothing_new.now_lima())
    with connect(home_lake(home.path)) as con:
        before = nothing_new.current_snapshot(con)
        con.execute("DELETE FROM recon_item_rows WHERE store_id = 'nobody'")  # derived: a run's own kind of write
        con.execute("INSERT INTO counters VALUES ('scratch', 1)")
        assert nothing_new.touched_beyond_derived(con, before) == []
        assert nothing_new.remember(con, settings, ["shop"], day, day, inputs, before, ["r1"])
        assert nothing_new.recorded(settings, ["shop"], day, day, nothing_new.now_lima()) is not None

        con.execute("INSERT INTO quarantine (source, file, line, raw, errors) VALUES ('statements', 'x.csv', 2, '{}', 'x')")           # an input of the reports moved
        assert nothing_new.touched_beyond_derived(con, before) == ["quarantine"]
        assert not nothing_new.remember(con, settings, ["shop"], day, day, inputs, before, ["r2"])
        assert nothing_new.recorded(settings, ["shop"], day, day, nothing_new.now_lima()) is None
