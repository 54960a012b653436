"""Reading landing files as they really arrive: BOM or not, CRLF or LF, UTF-8 or Latin-1
(cp1252), comma or Excel's semicolon. Streams: memory stays bounded whatever the file size."""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

BLOCK = 1 << 20
# JSON statements are read whole: API pulls and notifications are small, and a document nested
# deeper than any real reply (3 levels) would exhaust the parser's recursion.
MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


class UnreadableFile(Exception):
    """The file as a whole cannot be read; nothing of it is loaded."""


@dataclass(frozen=True)
class FileFacts:
    sha256: str
    size: int
    encoding: str  # a Python codec name: utf-8-sig or cp1252
    ends_with_newline: bool
    newlines: int = 0  # how many `\n` bytes it holds
    has_nul: bool = False


def inspect_file(path: Path) -> FileFacts:
    """One pass: content hash, and which encoding decodes the whole file."""
    digest = hashlib.sha256()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    utf8_ok, size, last, newlines, has_nul = True, 0, b"", 0, False
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
            size += len(block)
            last = block[-1:]
            newlines += block.count(b"\n")
            has_nul = has_nul or b"\x00" in block
            if utf8_ok:
                try:
                    utf8.decode(block)
                except UnicodeDecodeError:
                    utf8_ok = False
        if utf8_ok:
            try:
                utf8.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8_ok = False
    encoding = "utf-8-sig" if utf8_ok else "cp1252"
    if not utf8_ok:
        cp = codecs.getincrementaldecoder("cp1252")()
        with open(path, "rb") as fh:
            offset = 0
            while block := fh.read(BLOCK):
                try:
                    cp.decode(block)
                except UnicodeDecodeError as exc:
                    raise UnreadableFile(
                        f"not UTF-8 and not Latin-1/cp1252: undecodable byte 0x{block[exc.start]:02x} at byte offset {offset + exc.start}"
                    ) from None
                offset += len(block)
    return FileFacts(digest.hexdigest(), size, encoding, last in (b"\n", b"\r"), newlines, has_nul)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def normalize_header(name: str) -> str:
    """`" Financial Status "` -> `financial_status`."""
    return "_".join(name.strip().strip('"').lower().replace("-", " ").split())


@dataclass(frozen=True)
class CsvRecord:
    line: int  # physical line where the record starts (the header is line 1)
    fields: list[str]


def read_csv_header(path: Path, facts: FileFacts) -> tuple[list[str], str]:
    with open(path, encoding=facts.encoding, newline="") as fh:
        first = fh.readline()
    if not first.strip():
        raise UnreadableFile("empty file: no header line" if facts.size == 0 else "no header: the first line is blank")
    delimiter = ";" if first.count(";") > first.count(",") else ","
    header = next(csv.reader([first], delimiter=delimiter))
    return [normalize_header(h) for h in header], delimiter


def iter_csv_records(path: Path, facts: FileFacts, delimiter: str) -> Iterator[CsvRecord]:
    """Data records after the header, one by one (see iter_csv_blocks)."""
    for fields_block, lines in iter_csv_blocks(path, facts, delimiter):
        for fields, line in zip(fields_block, lines):
            yield CsvRecord(line, fields)


def iter_csv_blocks(path: Path, facts: FileFacts, delimiter: str, size: int = 50_000) -> Iterator[tuple[list[list[str]], list[int]]]:
    """Data records after the header, in blocks of up to `size`: their fields and the physical
    line each starts on (the header is line 1; blank lines are skipped but counted). A final
    record cut short (no line end, quote left open, fewer fields than the header) means the file
    is truncated: UnreadableFile. One tight loop, no object per record. Ingestion reads a
    well-formed UTF-8 file with native_csv_batches instead; this reads every other one."""
    with open(path, encoding=facts.encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise UnreadableFile("empty file: no header line") from None
        width = len(header)
        block: list[list[str]] = []
        lines: list[int] = []
        start = reader.line_num + 1
        try:
            for fields in reader:
                if fields and fields != [""]:
                    block.append(fields)
                    lines.append(start)
                    # The last record stays behind until it is known whether it is truncated.
                    if len(block) > size:
                        last, last_line = block.pop(), lines.pop()
                        yield block, lines
                        block, lines = [last], [last_line]
                start = reader.line_num + 1
        except csv.Error as exc:
            raise UnreadableFile(f"line {reader.line_num}: {exc} (truncated file or broken quoting)") from None
        if block and not facts.ends_with_newline and len(block[-1]) < width:
            raise UnreadableFile(
                f"truncated: the last record (line {lines[-1]}) has {len(block[-1])} of {width} fields and no line end"
            )
        if block:
            yield block, lines


def native_csv_batches(path: Path, facts: FileFacts, width: int, delimiter: str, size: int) -> Iterator[pl.DataFrame] | None:
    """The data records as frames of up to about `size` rows of text, columns `c0`.. (null for an
    empty field); record k (from 0) starts on line k + 2. Only for a file where that holds and
    the readers agree with iter_csv_blocks: UTF-8 without NUL bytes, and as many records (every
    one of `width` fields, counted by DuckDB's parallel reader in strict mode) as lines after the
    header, so no blank line, no line break inside a quoted field, no ragged or truncated record.
    None for any other file: iter_csv_blocks reads it, and says what is wrong with it."""
    if facts.encoding != "utf-8-sig" or facts.has_nul:
        return None
    lines = facts.newlines + (0 if facts.ends_with_newline else 1)
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width))
    sql = (f"SELECT * FROM read_csv(?, header = true, auto_detect = false, columns = {{{columns}}}, delim = ?, "
           "quote = '\"', escape = '\"', strict_mode = true, null_padding = false, all_varchar = true)")
    con = _csv_reader(os.getpid()).cursor()
    try:
        records = con.execute(f"SELECT count(*) FROM ({sql})", [str(path), delimiter]).fetchone()[0]
    except duckdb.Error:
        con.close()
        return None
    if records + 1 != lines:
        con.close()
        return None
    return _frames(con, sql, path, width, delimiter, size)


def _frames(con, sql: str, path: Path, width: int, delimiter: str, size: int) -> Iterator[pl.DataFrame]:
    """Polars reads the records: 0.45 s for 1M statement rows, where DuckDB's streamed Arrow
    batches of the same rows took 1.6-2.1 s. Polars refuses a quote inside an unquoted field
    (`ab"c`), which DuckDB and the csv module take as a character: from the first frame polars
    could not read, DuckDB reads on. Where both read a record, they read the same fields."""
    done = 0
    try:
        try:
            frames = pl.scan_csv(path, has_header=False, skip_rows=1, separator=delimiter, quote_char='"', glob=False,
                                 schema={f"c{i}": pl.String for i in range(width)}, raise_if_empty=False)
            for frame in frames.collect_batches(chunk_size=size):
                if len(frame):
                    done += len(frame)
                    yield frame
            return
        except pl.exceptions.PolarsError:
            pass
        for batch in con.execute(f"{sql} OFFSET {done}", [str(path), delimiter]).to_arrow_reader(size):
            yield pl.from_arrow(batch)
    finally:
        con.close()


@functools.cache
def _csv_reader(pid: int) -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB for reading CSV, shared by the process (`pid`: a forked worker opens its
    own; each read takes a cursor of its own): opening a database costs 12 ms a file, and a year of
    daily files for 10 stores is 7,800 files."""
    return duckdb.connect()


def read_json(path: Path, facts: FileFacts):
    """Whole-document JSON (API pulls and notifications are small); numbers kept exact as Decimal.
    Size and nesting are checked before parsing (MAX_JSON_BYTES, MAX_JSON_DEPTH)."""
    if facts.size > MAX_JSON_BYTES:
        raise UnreadableFile(
            f"{facts.size:,} bytes is larger than the {MAX_JSON_BYTES:,}-byte limit for a JSON statement; "
            "split it into smaller files or send it as CSV"
        )
    with open(path, "rb") as fh:
        raw = fh.read()
    text = raw.decode(facts.encoding)
    if not text.strip():
        raise UnreadableFile("empty file: no JSON document")
    too_deep = json_depth_problem(text)
    if too_deep:
        raise UnreadableFile(too_deep)
    try:
        return json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except json.JSONDecodeError as exc:
        raise UnreadableFile(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg} (truncated?)") from None


def json_depth_problem(text: str, limit: int | None = None) -> str | None:
    """Where `text` nests objects/arrays deeper than `limit` (default MAX_JSON_DEPTH), as
    "line L, column C: ..." or None. Strings are skipped; the count is vectorized, so a file of
    brackets costs milliseconds, not the parser's recursion."""
    limit = MAX_JSON_DEPTH if limit is None else limit
    # Strings blanked out; brackets are ASCII, so UTF-8 bytes can be scanned in blocks.
    data = _JSON_STRING.sub(lambda m: " " * len(m.group(0)), text).encode("utf-8")
    depth = 0
    for start in range(0, len(data), BLOCK):
        codes = np.frombuffer(data, dtype=np.uint8, count=min(BLOCK, len(data) - start), offset=start)
        step = np.zeros(len(codes), dtype=np.int32)
        step[(codes == ord("[")) | (codes == ord("{"))] = 1
        step[(codes == ord("]")) | (codes == ord("}"))] = -1
        running = depth + np.cumsum(step)
        over = np.flatnonzero(running > limit)
        if len(over):
            offset = start + int(over[0])
            line_start = data.rfind(b"\n", 0, offset) + 1
            line = data.count(b"\n", 0, offset) + 1
            column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
            return (
                f"line {line}, column {column}: JSON nested deeper than {limit} levels "
                "(a statement nests 3); not a PagoEfectivo reply or notification"
            )
        if len(running):
            depth = int(running[-1])
    return None


def unexpected_failure(exc: BaseException) -> str:
    """The message for a failure no rule foresaw. Only the exception's type: its text may quote
    the row being read, and personal data never goes into an error."""
    return (
        f"unexpected {type(exc).__name__} while reading; nothing of it was loaded. Check the file "
        "(a value out of range?), fix and drop it again, or set it aside with `pagorecon landing retire`"
    )


def json_text(value) -> str:
    """JSON scalar -> the string a CSV would have carried (Decimal keeps its digits)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f") if value == value.to_integral_value() or abs(value.as_tuple().exponent) <= 6 else str(value)
    return str(value)


def raw_json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)
