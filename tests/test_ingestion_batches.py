"""Small landing files load several to a transaction (ingestion/loader.py `_load_batch`): the same
rows, quarantine and bookkeeping as file by file, far fewer commits, and one file's failure stays
that file's."""

import duckdb

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.ingestion import loader
from pagorecon_dagster.ingestion.loader import ingest_source
from pagorecon_dagster.warehouse.duckdb import connect

ROW = "9000{n:04d},A{n},,paid,PEN,10.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,\n"
BAD = "9100{n:04d},B{n},,paidd,PEN,10.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,\n"


def drop_days(home, files: int = 12) -> None:
    for day in range(files):
        rows = ROW.format(n=2 * day) + ROW.format(n=2 * day + 1) + BAD.format(n=day)
        home.statements(rows, name=f"day_{day:02d}.csv")


def snapshots(home) -> int:
    with connect(load_settings(home.path).lake) as con:  # (creates the warehouse the first time)
        return con.execute("SELECT count(*) FROM ducklake_snapshots(current_database())").fetchone()[0]


def ingest(home):
    settings = load_settings(home.path)
    with connect(settings.lake) as con:
        return ingest_source(con, settings, "statements")


def test_small_files_share_a_commit_and_load_as_file_by_file(home, monkeypatch):
    drop_days(home)
    before = snapshots(home)
    report = ingest(home)
    assert snapshots(home) - before == 1  # twelve files, one commit
    assert [f.status for f in report.files] == ["loaded"] * 12
    files = home.query("SELECT file, file_seq, rows_read, rows_loaded, rows_quarantined FROM ingested_files ORDER BY file")
    assert [(f["rows_read"], f["rows_loaded"], f["rows_quarantined"]) for f in files] == [(3, 2, 1)] * 12
    assert len({f["file_seq"] for f in files}) == 12  # each file its own number, in file order
    assert [f["file_seq"] for f in files] == sorted(f["file_seq"] for f in files)
    batched = home.query("SELECT file, line, cip FROM statement_rows ORDER BY ALL")
    quarantined = home.query("SELECT file, line, errors FROM quarantine ORDER BY ALL")

    # The same files one at a time (every file over the size limit) give the same rows.
    other = home.path.parent / "one_by_one"
    other.mkdir()
    (other / "pagorecon.yaml").write_text((home.path / "pagorecon.yaml").read_text())
    home.path, kept = other, home.path
    drop_days(home)
    monkeypatch.setattr(loader, "SMALL_FILE_BYTES", 0)
    before = snapshots(home)
    ingest(home)
    assert snapshots(home) - before == 12
    assert home.query("SELECT file, line, cip FROM statement_rows ORDER BY ALL") == batched
    assert home.query("SELECT file, line, errors FROM quarantine ORDER BY ALL") == quarantined
    home.path = kept


def test_a_batch_that_fails_loads_file_by_file_and_only_the_bad_file_fails(home, monkeypatch):
    drop_days(home, files=3)
    record = loader._record_changed_days

    def failing_for_day_01(con, settings, source, file_seq):
        file = con.execute("SELECT DISTINCT file FROM statement_rows WHERE file_seq = ?", [file_seq]).fetchone()
        if file and file[0].endswith("day_01.csv"):
            raise duckdb.IOException("disk full while writing day_01")
        record(con, settings, source, file_seq)

    monkeypatch.setattr(loader, "_record_changed_days", failing_for_day_01)
    report = ingest(home)
    assert {f.file.rsplit("/", 1)[-1]: f.status for f in report.files} == {
        "day_00.csv": "loaded", "day_01.csv": "failed", "day_02.csv": "loaded"}
    assert "unexpected IOException" in next(f.error for f in report.files if f.status == "failed")
    loaded = home.query("SELECT file, status FROM ingested_files ORDER BY file")
    assert [(f["file"].rsplit("/", 1)[-1], f["status"]) for f in loaded] == [
        ("day_00.csv", "loaded"), ("day_01.csv", "failed"), ("day_02.csv", "loaded")]
    # nothing of the failed file is in the warehouse; the others are whole
    assert home.query("SELECT count(*) AS n FROM statement_rows WHERE file LIKE '%day_01.csv'")[0]["n"] == 0
    assert home.query("SELECT count(*) AS n FROM quarantine WHERE file LIKE '%day_01.csv'")[0]["n"] == 0
    assert home.query("SELECT count(*) AS n FROM statement_rows")[0]["n"] == 4
