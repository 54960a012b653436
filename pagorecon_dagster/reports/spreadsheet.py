"""A report as CSV and as XLSX. Both are spreadsheet-safe: text never starts with a formula
character (see `safety.inert`), and in XLSX every text cell is a string cell, never a formula.
Money is exact: CSV `1234.50`; XLSX a decimal number with format `0.00`, built from céntimos."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import xlsxwriter

from pagorecon_dagster.reports.content import COUNT, DATE, MONEY, Column, Report, Table, cell_text
from pagorecon_dagster.reports.safety import inert

TEXT_COLUMN_MAX_WIDTH = 70
# Above this many table cells a workbook streams each sheet's rows through a temporary file (memory
# stays small on a big day); below, it is built in memory (a day's report: no temporary files).
STREAMED_CELLS = 200_000
_FIXED_TIME = dt.datetime(1980, 1, 1)  # the workbook's created and modified dates


def _csv_cell(column: Column, value: object) -> str:
    text = cell_text(column, value)
    return text if column.kind in (MONEY, COUNT, DATE) else inert(text)


def render_csv(report: Report) -> str:
    """Sections separated by a blank line: first the title and facts, then per table its title,
    its header and its rows. UTF-8 with BOM so Excel reads accents right."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([inert(report.title)])
    for label, value in report.facts:
        writer.writerow([inert(label), inert(value)])
    for table in report.tables:
        writer.writerow([])
        writer.writerow([inert(table.title)])
        writer.writerow([inert(c.label) for c in table.columns])
        for row in table.rows:
            writer.writerow([_csv_cell(c, v) for c, v in zip(table.columns, row)])
    return "\ufeff" + out.getvalue()


class _Cells:
    """Writes a workbook's cells with one format object per look (XlsxWriter wants each made once)."""

    def __init__(self, workbook: xlsxwriter.Workbook) -> None:
        self.workbook = workbook
        self.formats: dict[tuple, object] = {}

    def _format(self, **props) -> object:
        key = tuple(sorted(props.items()))
        if key not in self.formats:
            self.formats[key] = self.workbook.add_format(props)
        return self.formats[key]

    def write(self, sheet, row: int, col: int, column: Column, value: object, bold: bool = False, size: int | None = None) -> None:
        """Write `value` at (row, col). Text is always a string cell, never a formula, and inert;
        money an exact decimal (céntimos / 100) shown `0.00`."""
        if value is None:
            return
        look = {"bold": True} if bold else {}
        if column.kind == MONEY:
            sheet.write_number(row, col, Decimal(int(value)) / 100, self._format(num_format="0.00", **look))
        elif column.kind == COUNT:
            sheet.write_number(row, col, int(value), self._format(**look))
        elif column.kind == DATE and isinstance(value, dt.date):
            with_time = isinstance(value, dt.datetime)
            sheet.write_datetime(row, col, value, self._format(num_format="yyyy-mm-dd hh:mm" if with_time else "yyyy-mm-dd", **look))
        else:
            shown = inert(cell_text(column, value))
            if not shown:
                return
            if size:
                look["font_size"] = size
            sheet.write_string(row, col, shown, self._format(valign="top", **look))


def _write_table(cells: _Cells, sheet, table: Table) -> None:
    header = [c.label for c in table.columns]
    widths = [len(cell_text(Column(c.label), c.label)) for c in table.columns]
    for row in table.rows:
        for col, (column, value) in enumerate(zip(table.columns, row)):
            widths[col] = max(widths[col], len(cell_text(column, value)))
    for col, width in enumerate(widths):  # before the rows: a streamed sheet writes its columns first
        sheet.set_column(col, col, min(width + 2, TEXT_COLUMN_MAX_WIDTH))
    sheet.freeze_panes(1, 0)
    if table.rows:
        sheet.autofilter(0, 0, len(table.rows), len(table.columns) - 1)
    for col, label in enumerate(header):
        cells.write(sheet, 0, col, Column(label), label, bold=True)
    for i, row in enumerate(table.rows):
        bold = i in table.total_rows
        for col, (column, value) in enumerate(zip(table.columns, row)):
            cells.write(sheet, i + 1, col, column, value, bold=bold)


def write_xlsx(report: Report, path: Path) -> None:
    """First sheet: title, facts and what each sheet holds; then one sheet per table, header in row 1.
    XlsxWriter rather than openpyxl: 5x faster on a day's report, where the XLSX was most of a
    report's time (benchmarks/README.md). Its zip entries carry a fixed time and the document's
    dates are fixed here, so the same report is the same bytes (a checksum says whether a rerun
    changed anything), like the HTML and CSV."""
    cells_in_tables = sum(len(t.rows) * len(t.columns) for t in report.tables)
    streamed = cells_in_tables > STREAMED_CELLS
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": streamed, "in_memory": not streamed,
                                               "strings_to_numbers": False, "strings_to_formulas": False,
                                               "strings_to_urls": False})
    workbook.set_properties({"author": "pagorecon", "created": _FIXED_TIME})
    cells = _Cells(workbook)
    cover = workbook.add_worksheet(_sheet_name(report.cover_sheet, set()))
    cover.set_column(0, 0, 34)
    cover.set_column(1, 1, 110)
    text = Column("")
    used = {cover.name}
    sheets = []
    lines: list[tuple] = [((report.title, True, 14),), (), *(((label, True, None), (value, False, None)) for label, value in report.facts), ()]
    for table in report.tables:
        name = _sheet_name(table.sheet, used)
        used.add(name)
        what = table.title + (f" — {table.note}" if table.note else "")
        lines.append(((name, True, None), (what, False, None)))
        sheets.append((name, table))
    lines += [(), ((report.footer, False, None),)]
    for row, line in enumerate(lines):
        for col, (value, bold, size) in enumerate(line):
            cells.write(cover, row, col, text, value, bold=bold, size=size)
    for name, table in sheets:
        _write_table(cells, workbook.add_worksheet(name), table)
    workbook.close()



def _sheet_name(wanted: str, used: set[str]) -> str:
    """Excel sheet names: at most 31 characters, none of []:*?/\\, unique in the workbook."""
    base = "".join("-" if ch in "[]:*?/\\" else ch for ch in wanted)[:31].strip() or "Sheet"
    name, n = base, 2
    while name in used:
        suffix = f" ({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    return name
