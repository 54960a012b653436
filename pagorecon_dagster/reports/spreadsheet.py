"""A report as CSV and as XLSX. Both are spreadsheet-safe: text never starts with a formula
character (see `safety.inert`), and in XLSX every text cell is a string cell, never a formula.
Money is exact: CSV `1234.50`; XLSX a decimal number with format `0.00`, built from céntimos."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from pagorecon_dagster.reports.content import COUNT, DATE, MONEY, Column, Report, Table, cell_text
from pagorecon_dagster.reports.safety import inert

TEXT_COLUMN_MAX_WIDTH = 70
BOLD = Font(bold=True)
TOP = Alignment(vertical="top")


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


def _xlsx_cell(sheet, column: Column, value: object, bold: bool = False) -> tuple[WriteOnlyCell | None, int]:
    """The cell for `value` and how many characters it shows. Text is always a string cell
    (openpyxl would otherwise make `=...` a formula), and inert."""
    if value is None:
        return None, 0
    if column.kind == MONEY:
        cell = WriteOnlyCell(sheet, value=Decimal(int(value)) / 100)  # exact: céntimos / 100 as a decimal
        cell.number_format = "0.00"
    elif column.kind == COUNT:
        cell = WriteOnlyCell(sheet, value=int(value))
    elif column.kind == DATE:
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = "yyyy-mm-dd hh:mm" if isinstance(value, dt.datetime) else "yyyy-mm-dd"
    else:
        cell = WriteOnlyCell(sheet, value=inert(cell_text(column, value)))
        cell.data_type = "s"
        cell.alignment = TOP
    if bold:
        cell.font = BOLD
    return cell, len(cell_text(column, value))


def _write_table(sheet, table: Table) -> None:
    header = [_xlsx_cell(sheet, Column(c.label), c.label, bold=True) for c in table.columns]
    rows = [[_xlsx_cell(sheet, c, v, bold=i in table.total_rows) for c, v in zip(table.columns, row)]
            for i, row in enumerate(table.rows)]
    for col in range(len(table.columns)):
        width = max(shown_width for _, shown_width in [header[col], *(row[col] for row in rows)])
        sheet.column_dimensions[get_column_letter(col + 1)].width = min(width + 2, TEXT_COLUMN_MAX_WIDTH)
    sheet.freeze_panes = "A2"
    if table.rows:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(table.columns))}{len(table.rows) + 1}"
    for row in [header, *rows]:
        sheet.append([cell for cell, _ in row])


def write_xlsx(report: Report, path: Path) -> None:
    """First sheet: title, facts and what each sheet holds; then one sheet per table, header in row 1."""
    workbook = Workbook(write_only=True)  # streams rows: a big day stays fast and small in memory
    workbook.properties.creator = "pagorecon"
    cover = workbook.create_sheet(_sheet_name(report.cover_sheet, set()))
    cover.column_dimensions["A"].width = 34
    cover.column_dimensions["B"].width = 110
    text = Column("")
    title, _ = _xlsx_cell(cover, text, report.title)
    title.font = Font(bold=True, size=14)
    cover.append([title])
    cover.append([])
    for label, value in report.facts:
        cover.append([_xlsx_cell(cover, text, label, bold=True)[0], _xlsx_cell(cover, text, value)[0]])
    cover.append([])
    used = {cover.title}
    sheets = []
    for table in report.tables:
        name = _sheet_name(table.sheet, used)
        used.add(name)
        what = table.title + (f" — {table.note}" if table.note else "")
        cover.append([_xlsx_cell(cover, text, name, bold=True)[0], _xlsx_cell(cover, text, what)[0]])
        sheets.append((name, table))
    cover.append([])
    cover.append([_xlsx_cell(cover, text, report.footer)[0]])
    for name, table in sheets:
        _write_table(workbook.create_sheet(name), table)
    workbook.save(path)
    _same_bytes_every_time(path)


# An XLSX is a zip: its entries carry the time they were written, and docProps/core.xml the time
# the workbook was created and saved. Both are fixed, so the same report is the same bytes (a
# checksum says whether a rerun changed anything), like the HTML and CSV.
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_DOC_TIMES = re.compile(rb"(<dcterms:(?:created|modified)\b[^>]*>)[^<]*")


def _same_bytes_every_time(path: Path) -> None:
    with zipfile.ZipFile(path) as written:
        entries = [(info, written.read(info)) for info in written.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as fixed:
        for info, data in entries:
            if info.filename == "docProps/core.xml":
                data = _DOC_TIMES.sub(rb"\g<1>1980-01-01T00:00:00Z", data)
            entry = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = info.external_attr
            fixed.writestr(entry, data)


def _sheet_name(wanted: str, used: set[str]) -> str:
    """Excel sheet names: at most 31 characters, none of []:*?/\\, unique in the workbook."""
    base = "".join("-" if ch in "[]:*?/\\" else ch for ch in wanted)[:31].strip() or "Sheet"
    name, n = base, 2
    while name in used:
        suffix = f" ({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    return name
