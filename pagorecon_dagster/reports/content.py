"""What a report says, apart from how it is drawn: the same `Report` is rendered to HTML, CSV and
XLSX, so the three formats cannot disagree on a céntimo."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pagorecon_dagster.core.money import format_cents
from pagorecon_dagster.reports.safety import LABEL, TEXT_KINDS, shown

MONEY = "money"  # integer céntimos; None = unknown / not applicable
COUNT = "count"
DATE = "date"
CELL_KINDS = (MONEY, COUNT, DATE, *TEXT_KINDS)


@dataclass(frozen=True)
class Column:
    label: str
    kind: str = LABEL

    def __post_init__(self) -> None:
        if self.kind not in CELL_KINDS:
            raise ValueError(f"column {self.label!r}: unknown kind {self.kind!r}; expected one of {', '.join(CELL_KINDS)}")


@dataclass
class Table:
    """One section of a report: a titled table. `key` names it for machines (HTML `data-table`)."""

    key: str
    title: str
    sheet: str  # XLSX sheet name (<= 31 characters)
    columns: list[Column]
    rows: list[list[object]] = field(default_factory=list)
    total_rows: set[int] = field(default_factory=set)  # indexes of rows that are totals
    note: str = ""

    def add(self, row: list[object], *, total: bool = False) -> None:
        if len(row) != len(self.columns):
            raise ValueError(f"table {self.key}: row has {len(row)} cells for {len(self.columns)} columns: {row!r}")
        if total:
            self.total_rows.add(len(self.rows))
        self.rows.append(row)


@dataclass(frozen=True)
class Chart:
    """An inline SVG drawing (HTML only; the spreadsheet carries the table it was drawn from)."""

    title: str
    svg: str


@dataclass
class Report:
    kind: str            # daily | all_stores | month_close
    path: str            # relative to reports/, without suffix: daily/2026-07/shop_2026-07-14
    title: str
    language: str
    facts: list[tuple[str, str]]
    blocks: list[Table | Chart]
    footer: str
    empty_text: str      # what an empty table says ("None.")
    cover_sheet: str     # name of the XLSX sheet with the title and facts
    summary: str         # one markdown line for the Dagster UI

    @property
    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)]


def cell_text(column: Column, value: object) -> str:
    """What a cell reads, in every format: money `1234.50`, counts as integers, text masked."""
    if value is None:
        return ""
    if column.kind == MONEY:
        return format_cents(int(value))
    if column.kind == COUNT:
        return str(int(value))
    if column.kind == DATE:
        if isinstance(value, dt.datetime):
            return value.strftime("%Y-%m-%d %H:%M")
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    return shown(column.kind, value)
