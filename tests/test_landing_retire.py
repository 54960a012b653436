"""`pagorecon landing retire FILE --reason TEXT` (docs/operations.md, A file that can never be
read): a file that can never be read is moved to archive/, recorded as `retired`, and no later run tries it again."""

import getpass
import subprocess
import sys

import pytest
from test_ingestion_bad_input import GOOD, cli_run, deeply_nested_json

from pagorecon_dagster.cli import EXIT_OK, EXIT_UNREADABLE_FILES, EXIT_USAGE, main


def retire(home, file, reason="export is corrupt", capsys=None):
    code = main(["--home", str(home.path), "landing", "retire", str(file), "--reason", reason])
    return code, (capsys.readouterr() if capsys else None)


def test_a_retired_file_moves_to_archive_and_the_next_run_no_longer_sees_it(home, capsys, monkeypatch, tmp_path):
    deep = deeply_nested_json()
    home.drop("statements/shop/a_deep.json", deep, dedent=False)
    home.statements(GOOD + "\n", name="b_good.csv")
    assert cli_run(home, capsys, monkeypatch, tmp_path)[0] == EXIT_UNREADABLE_FILES
    # the same file fails again on every run until someone acts
    assert cli_run(home, capsys, monkeypatch, tmp_path)[0] == EXIT_UNREADABLE_FILES

    # the path as the run printed it (landing/...) is accepted; the reason is masked when recorded
    code, out = retire(home, "landing/statements/shop/a_deep.json", "unreadable export; buyer DNI 45871236 asked, rosa@example.pe", capsys)
    assert code == EXIT_OK, out.err
    archived = home.path / "archive/landing/statements/shop/a_deep.json"
    assert "archive/landing/statements/shop/a_deep.json" in out.out
    assert archived.read_text() == deep
    assert not (home.path / "landing/statements/shop/a_deep.json").exists()
    rows = home.query("SELECT file, status, error, ingested_at FROM ingested_files WHERE file = 'statements/shop/a_deep.json'")
    assert [r["status"] for r in rows] == ["retired"]
    (row,) = rows
    assert row["error"] == (f"retired by {getpass.getuser()} to archive/landing/statements/shop/a_deep.json: "
                            "unreadable export; buyer DNI *****236 asked, r***@example.pe")
    assert row["ingested_at"] is not None

    code, out = cli_run(home, capsys, monkeypatch, tmp_path)
    assert code == EXIT_OK, out.err
    assert "a_deep.json" not in out.err
    assert [r["status"] for r in home.query("SELECT status FROM ingested_files WHERE file = 'statements/shop/a_deep.json'")] == ["retired"]


def test_an_archived_copy_is_never_overwritten(home, capsys):
    first = home.drop("statements/shop/x.json", "[", dedent=False)
    assert retire(home, first, capsys=capsys)[0] == EXIT_OK  # absolute path inside landing/
    home.drop("statements/shop/x.json", "[[", dedent=False)
    code, out = retire(home, "statements/shop/x.json", capsys=capsys)
    assert code == EXIT_OK, out.err
    folder = home.path / "archive/landing/statements/shop"
    assert (folder / "x.json").read_text() == "["
    others = sorted(p.name for p in folder.iterdir() if p.name != "x.json")
    assert len(others) == 1 and (folder / others[0]).read_text() == "[["
    assert f"archive/landing/statements/shop/{others[0]}" in out.out
    assert len(home.query("SELECT * FROM ingested_files WHERE status = 'retired'")) == 2


@pytest.mark.parametrize("outside", ["../pagorecon.yaml", "/etc/hostname", "statements/../../pagorecon.yaml"])
def test_paths_outside_landing_are_refused(home, capsys, outside):
    home.drop("statements/shop/x.json", "[", dedent=False)
    before = (home.path / "pagorecon.yaml").read_text()
    code, out = retire(home, outside, capsys=capsys)
    assert code == EXIT_USAGE
    assert "is not inside" in out.err and "landing" in out.err
    assert (home.path / "pagorecon.yaml").read_text() == before
    assert not (home.path / "archive").exists() or not any((home.path / "archive").rglob("*.*"))


def test_a_missing_file_or_a_folder_is_refused(home, capsys):
    code, out = retire(home, "statements/shop/nothing.csv", capsys=capsys)
    assert code == EXIT_USAGE and "landing/statements/shop/nothing.csv: no such file" in out.err
    home.drop("statements/shop/x.json", "[", dedent=False)
    code, out = retire(home, "statements/shop", capsys=capsys)
    assert code == EXIT_USAGE and "is a folder" in out.err


def test_the_console_script_has_the_command(home):
    home.drop("fx/broken.csv", b"\x81\x8d", dedent=False)
    done = subprocess.run(
        [sys.executable, "-m", "pagorecon_dagster.cli", "--home", str(home.path), "landing", "retire", "fx/broken.csv",
         "--reason", "not a rate file"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (home.path / "archive/landing/fx/broken.csv").read_bytes() == b"\x81\x8d"
    (row,) = home.query("SELECT source, store_id, status, sha256 FROM ingested_files")
    assert (row["source"], row["store_id"], row["status"]) == ("fx", None, "retired") and len(row["sha256"]) == 64
