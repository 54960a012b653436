"""Retention: `pagorecon retention --dry-run` lists exactly what `--apply` archives or removes, the
audit chain still verifies after its prefix is sealed (and still catches a tampered entry), a
second apply does nothing, refunds that are not final stay, and a monthly schedule runs it.

The refunds scenario (refunds_fixtures.py) happens in July 2026; counted back from 2032-01-01,
all of it is past the 5 years of the defaults."""

import datetime as dt

import dagster as dg
import duckdb
import yaml

from pagorecon_dagster.cli import main
from pagorecon_dagster.config import load_settings
from pagorecon_dagster.definitions import build_definitions
from pagorecon_dagster.retention import FINAL_REFUND_STATUSES, RETENTION_JOB, apply
from pagorecon_dagster.warehouse.duckdb import connect, home_lake

LATER = "2032-01-01"
TABLES = ("statement_rows", "order_rows", "refund_request_rows", "fx_rate_rows", "recon_item_rows", "recon_daily_summary",
          "quarantine", "refunds", "audit_log", "ingested_files", "audit_checkpoints")


def retention(home, *args: str) -> int:
    return main(["--home", str(home.path), "retention", *args])


def verify(home) -> int:
    return main(["--home", str(home.path), "refunds", "verify-audit"])


def snapshot(home) -> dict:
    """Everything retention may touch: the tables' rows, the landing and archive files, the anchor."""
    with connect(home_lake(home.path), read_only=True) as con:
        tables = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in TABLES}
    files = sorted(p.relative_to(home.path).as_posix() for p in home.path.rglob("*")
                   if p.is_file() and p.parts[len(home.path.parts)] in ("landing", "archive"))
    return {"tables": tables, "files": files}


def listed(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("  ")]


def set_retention(home, **policy) -> None:
    path = home.path / "pagorecon.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump({**data, "retention": policy}, sort_keys=False), encoding="utf-8")


def test_dry_run_changes_nothing_and_lists_exactly_what_apply_removes(taken_in, capsys):
    home = taken_in
    home.drop("statements/shop/notifications/op-1.json", "{}")   # never read: stays whatever its age
    before = snapshot(home)
    open_refunds = home.query("SELECT refund_id, status FROM refunds WHERE NOT list_contains(?, status)", [list(FINAL_REFUND_STATUSES)])
    assert open_refunds and verify(home) == 0
    capsys.readouterr()

    assert retention(home, "--dry-run", "--today", LATER) == 0
    dry = listed(capsys.readouterr().out)
    assert snapshot(home) == before

    assert retention(home, "--apply", "--today", LATER) == 0
    applied = listed(capsys.readouterr().out)
    assert applied == dry and dry
    after = snapshot(home)

    # Exactly what was listed went: each table lost the rows listed for it, and no other.
    removed = {line.split()[-1]: int(line.split()[2].replace(",", "")) for line in dry
               if line.split()[0] not in ("landing_files", "audit_log", "refunds")}
    for table in ("statement_rows", "order_rows", "refund_request_rows", "fx_rate_rows", "recon_item_rows", "recon_daily_summary"):
        assert len(before["tables"][table]) - len(after["tables"][table]) == removed[table], table
        assert not after["tables"][table]   # all of July 2026 is past 5 years in 2032
    landing = sorted(line.split()[-1] for line in dry if line.split()[0] == "landing_files")
    assert landing == sorted(f for f in before["files"] if f.startswith("landing/") and "notifications" not in f)
    assert [f for f in after["files"] if f.startswith("landing/")] == ["landing/statements/shop/notifications/op-1.json"]
    assert {f"archive/{f}" for f in landing} <= set(after["files"])

    # Refunds that are not final stay, whatever their age. Final ones leave with their data, those
    # audited before the first entry a staying refund still needs (the chain loses only a prefix).
    staying = home.query("SELECT refund_id, status FROM refunds")
    assert all(r in staying for r in open_refunds)
    (refunds_line,) = [line for line in dry if line.split()[0] == "refunds"]
    gone = refunds_line.split("(")[1].rstrip(")").split(", ")
    assert len(gone) == int(refunds_line.split()[2]) == len(before["tables"]["refunds"]) - len(staying) > 0
    statuses = {r[0]: r[8] for r in before["tables"]["refunds"]}
    assert all(statuses[refund_id] in FINAL_REFUND_STATUSES for refund_id in gone)

    # The audit chain lost a prefix, sealed, and still verifies; every staying refund keeps its audited state.
    (checkpoint,) = home.query("SELECT seq, removed FROM audit_checkpoints")
    first = home.query("SELECT min(seq) AS seq FROM audit_log")[0]["seq"]
    assert first == checkpoint["seq"] + 1 and checkpoint["removed"] == checkpoint["seq"] > 0
    assert (home.path / "archive" / "audit-anchor.log").read_text().splitlines()[-1].startswith(f"checkpoint {checkpoint['seq']} ")
    assert verify(home) == 0

    # Recorded: one retention_runs row per listed item.
    runs = home.query("SELECT data_class, target, items FROM retention_runs")
    assert len(runs) == len(dry)

    # A second apply does nothing.
    capsys.readouterr()
    assert retention(home, "--apply", "--today", LATER) == 0
    assert "nothing is past its period" in capsys.readouterr().out
    assert snapshot(home) == after

    # A tampered entry after the checkpoint is still caught.
    with connect(home_lake(home.path)) as con:
        con.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = ?", [first])
    assert verify(home) == 1


def test_a_checkpoint_moved_behind_retention_is_caught(taken_in, capsys):
    home = taken_in
    assert retention(home, "--apply", "--today", LATER) == 0
    (checkpoint,) = home.query("SELECT seq FROM audit_checkpoints")
    # Someone removes more entries and moves the checkpoint along to hide it: the anchor does not seal it.
    nxt = home.query("SELECT seq, hash FROM audit_log ORDER BY seq LIMIT 1")[0]
    with connect(home_lake(home.path)) as con:
        con.execute("UPDATE audit_checkpoints SET seq = ?, hash = ?", [nxt["seq"], nxt["hash"]])
        con.execute("DELETE FROM audit_log WHERE seq = ?", [nxt["seq"]])
    assert checkpoint["seq"] < nxt["seq"]
    capsys.readouterr()
    assert verify(home) == 1
    assert f"checkpoint at entry {nxt['seq']} that archive/audit-anchor.log does not seal" in capsys.readouterr().err


def test_a_decision_after_the_whole_log_was_sealed_continues_the_chain(taken_in):
    home = taken_in
    # Everything past its period, open refunds included in the log's age; open refunds keep their entries.
    assert retention(home, "--apply", "--today", LATER) == 0
    from pagorecon_dagster.refunds import audit
    with connect(home_lake(home.path)) as con:
        start = audit.latest_checkpoint(con)
        con.execute("DELETE FROM audit_log")   # as if every entry had been sealed
        entry = audit.append(con, actor="ana", action="note", entity="test", entity_id="x", before=None, after=None,
                             why=None, now=dt.datetime(2032, 1, 2, tzinfo=dt.timezone.utc))
    assert (entry["seq"], entry["prev_hash"]) == (start.seq + 1, start.hash)


def test_shorter_periods_apply_through_the_monthly_job(taken_in):
    home = taken_in
    set_retention(home, raw_rows="30 days", schedule={"day": 15, "hour": 4})
    definitions = build_definitions(load_settings(home.path))
    schedule = definitions.resolve_schedule_def("monthly_retention")
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == ("0 4 15 * *", "America/Lima", RETENTION_JOB)
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    result = definitions.resolve_job_def(RETENTION_JOB).execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    # Today is months after July 2026: the raw rows are past 30 days; everything else is kept 2 or 5 years.
    assert {r["data_class"] for r in home.query("SELECT data_class FROM retention_runs")} == {"raw_rows"}
    assert home.query("SELECT count(*) AS n FROM statement_rows")[0]["n"] == 0
    assert home.query("SELECT count(*) AS n FROM recon_item_rows")[0]["n"] > 0
    assert verify(home) == 0


def test_the_default_schedule_is_the_first_of_the_month_at_three(home):
    schedule = build_definitions(load_settings(home.path)).resolve_schedule_def("monthly_retention")
    assert schedule.cron_schedule == "0 3 1 * *"


class FirstCommitLoses:
    """The warehouse connection whose first COMMIT loses to another process's, in DuckLake's words."""

    def __init__(self, con):
        self.con, self.lost = con, False

    def execute(self, sql, *args):
        if sql == "COMMIT" and not self.lost:
            self.lost = True
            self.con.execute("ROLLBACK")
            raise duckdb.TransactionException("TransactionContext Error: Failed to commit: Failed to commit DuckLake transaction.")
        return self.con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.con, name)


def test_apply_runs_again_when_its_commit_loses_to_another_process(taken_in):
    home = taken_in
    with connect(home_lake(home.path)) as con:
        done = apply(FirstCommitLoses(con), load_settings(home.path), dt.date.fromisoformat(LATER), by="test")
    assert done.items
    assert len(home.query("SELECT * FROM retention_runs")) == len(done.items)
    assert home.query("SELECT * FROM statement_rows") == [] and home.query("SELECT * FROM audit_checkpoints")
    assert verify(home) == 0
