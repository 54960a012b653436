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


def test_files_of_a_batch_are_judged_together_and_each_row_keeps_its_own_errors(home, monkeypatch):
    """The files of a batch with the same columns go through Pandera in one call (a call costs
    tens of milliseconds however few its rows); each bad row's errors stay on its own file and line."""
    short_header = "cip,transaction_code,operation_number,status,currency,amount,date_creation,date_expiry,date_payment"
    for day in range(6):
        good = ROW.format(n=2 * day)
        bad = f"9200{day:04d},C{day},,paid{day},PEN,1.2{day}.0,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,\n"
        if day % 2:  # no commission and igv columns: judged apart from the others
            fields = bad.rstrip("\n").split(",")
            bad = ",".join(fields[:6] + fields[8:11]) + "\n"
            good = ",".join(good.rstrip("\n").split(",")[:6] + good.rstrip("\n").split(",")[8:11]) + "\n"
            home.drop(f"statements/shop/day_{day:02d}.csv", short_header + "\n" + good * day + bad, dedent=False)
        else:
            home.statements(good * day + bad, name=f"day_{day:02d}.csv")
    calls = []
    judge = loader._errors_by_row
    monkeypatch.setattr(loader, "_errors_by_row", lambda schema, frame: calls.append(len(frame)) or judge(schema, frame))

    report = ingest(home)

    assert [f.status for f in report.files] == ["loaded"] * 6
    assert sorted(calls) == [9, 12]  # two column sets: days 0, 2, 4 (0+2+4 good rows + 3 bad), days 1, 3, 5
    quarantined = home.query("SELECT file, line, errors FROM quarantine ORDER BY file")
    assert [(q["file"].rsplit("/", 1)[-1], q["line"]) for q in quarantined] == [
        (f"day_{day:02d}.csv", day + 2) for day in range(6)]  # each file's bad row is its last line
    for day, q in enumerate(quarantined):
        assert f"'paid{day}' must be one of" in q["errors"], q
        assert f"amount: '1.2{day}.0'" in q["errors"], q
    loaded = home.query("SELECT file, count(*) AS n FROM statement_rows GROUP BY file ORDER BY file")
    assert [(r["file"].rsplit("/", 1)[-1], r["n"]) for r in loaded] == [(f"day_{day:02d}.csv", day) for day in range(1, 6)]


def test_a_file_that_breaks_the_judging_of_its_batch_fails_alone(home, monkeypatch):
    drop_days(home, files=4)
    judge = loader._errors_by_row

    def breaks_on_day_02(schema, frame):
        if "A4" in frame["transaction_code"].to_list():  # a row of day_02.csv
            raise RuntimeError("the validator broke on day_02")
        return judge(schema, frame)

    monkeypatch.setattr(loader, "_errors_by_row", breaks_on_day_02)
    report = ingest(home)
    assert {f.file.rsplit("/", 1)[-1]: f.status for f in report.files} == {
        "day_00.csv": "loaded", "day_01.csv": "loaded", "day_02.csv": "failed", "day_03.csv": "loaded"}
    assert "unexpected RuntimeError" in next(f.error for f in report.files if f.status == "failed")
    assert home.query("SELECT count(*) AS n FROM statement_rows WHERE file LIKE '%day_02.csv'")[0]["n"] == 0
    assert home.query("SELECT count(*) AS n FROM statement_rows")[0]["n"] == 6
    assert home.query("SELECT count(*) AS n FROM quarantine")[0]["n"] == 3
