"""The two ways a CSV is read (DuckDB's reader for a file of one record a line, the csv module for
any other) give the same rows, and a value the schema parses is parsed once."""

import polars as pl
import pytest

from conftest import STATEMENT_HEADER

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.ingestion import loader, readers
from pagorecon_dagster.ingestion.sources import SOURCES

GOOD = "90000001,#a1,,paid,PEN,10.00,0.30,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,DNI,12345678,ana@example.pe"
ROWS = [
    GOOD,
    GOOD.replace("90000001", "90000002").replace("10.00", '"1,234.50"'),  # quoted, and quarantined
    GOOD.replace("90000001", "90000003").replace(",paid,", ", 593 ,").replace("2026-07-14T11", "2026-07-14 11"),
    GOOD.replace("90000001", "90000004").replace("2026-07-14T10:00:00-05:00", "2026-02-30T10:00:00-05:00"),
    GOOD.replace("90000001", "90000005").replace(",ana@example.pe", ","),
]


def judged(home, path):
    settings = load_settings(home.path)
    facts = readers.inspect_file(path)
    source = SOURCES["statements"]
    chunks = list(loader.judge_chunks(path, facts, source, settings.store("shop")))
    clean = pl.concat([source.to_rows(c.clean, settings.store("shop")).with_columns(line=c.clean["_line"]) for c in chunks])
    return clean, [q for c in chunks for q in c.quarantine]


def test_both_readers_give_the_same_rows_lines_and_errors(home, monkeypatch):
    path = home.statements("\n".join(ROWS) + "\n")
    facts = readers.inspect_file(path)
    assert readers.native_csv_batches(path, facts, len(STATEMENT_HEADER.split(",")), ",", 10) is not None
    native = judged(home, path)
    monkeypatch.setattr(readers, "native_csv_batches", lambda *args: None)
    by_csv_module = judged(home, path)
    assert native[0].equals(by_csv_module[0])
    assert native[1] == by_csv_module[1]
    assert native[0]["line"].to_list() == [2, 4, 6]
    assert [q[0] for q in native[1]] == [3, 5]


def test_a_quote_inside_a_field_is_read_as_the_csv_module_reads_it(home):
    """Polars refuses `5"B` (a lone quote inside an unquoted field); DuckDB reads on from there, and
    every record comes out as the csv module reads it, in order."""
    width = len(STATEMENT_HEADER.split(","))
    rows = [GOOD.replace("90000001", f"9000{n:04d}") for n in range(12)]
    rows[7] = rows[7].replace(",BCP,", ',BCP 5"B,')
    path = home.statements("\n".join(rows) + "\n")
    facts = readers.inspect_file(path)
    frames = readers.native_csv_batches(path, facts, width, ",", 4)
    assert frames is not None
    native = [tuple("" if v is None else v for v in row) for frame in frames for row in frame.rows()]
    by_csv_module = [tuple(fields) for block, _ in readers.iter_csv_blocks(path, facts, ",", 4) for fields in block]
    assert native == by_csv_module
    assert native[7][11] == 'BCP 5"B'


def test_a_file_of_other_shapes_is_left_to_the_csv_module(home):
    width = len(STATEMENT_HEADER.split(","))
    shapes = {
        "blank line": "\n".join(ROWS[:2]) + "\n\n" + ROWS[2] + "\n",
        "line break in a quoted field": ROWS[0].replace(",BCP,", ',"BCP\nagencia 2",') + "\n",
        "ragged row": ROWS[0] + "\n90000009,A9,short\n",
        "truncated": ROWS[0] + "\n90000009,A9,,paid,PEN,10.0",
    }
    for shape, body in shapes.items():
        path = home.statements(body, name=f"{shape}.csv")
        assert readers.native_csv_batches(path, readers.inspect_file(path), width, ",", 10) is None, shape
    path = home.statements(ROWS[0] + "\n", name="latin1.csv")
    path.write_bytes((STATEMENT_HEADER + "\n" + ROWS[0].replace("ana", "peña") + "\n").encode("cp1252"))
    assert readers.native_csv_batches(path, readers.inspect_file(path), width, ",", 10) is None


def test_timestamps_are_parsed_once(home, monkeypatch):
    from pagorecon_dagster.core import lima

    parsed = []
    timestamps = lima.timestamps
    monkeypatch.setattr(lima, "timestamps", lambda text: parsed.append(len(text)) or timestamps(text))
    path = home.statements("\n".join(ROWS) + "\n")
    clean, quarantine = judged(home, path)
    assert parsed == [5, 5, 5]  # date_creation, date_expiry, date_payment: one parse each
    assert clean["date_payment"].to_list()[1].isoformat() == "2026-07-14T16:00:00+00:00"


def test_one_ahead_keeps_order_raises_where_the_items_did_and_makes_at_most_one_in_advance():
    made = []

    def items():
        for n in range(4):
            made.append(n)
            yield n
        raise ValueError("line 9: truncated record")

    seen = []
    with pytest.raises(ValueError, match="truncated"):
        for item in loader.one_ahead(items()):
            seen.append(item)
            assert len(made) <= item + 2   # this one and at most the next
    assert seen == [0, 1, 2, 3]
