"""Writes a report in its three formats under `$PAGORECON_HOME/reports/`. Each file is written
to a temporary name and renamed, so a reader never opens half a report."""

from __future__ import annotations

import os
from pathlib import Path

from pagorecon_dagster.reports.content import Report
from pagorecon_dagster.reports.html import render_html
from pagorecon_dagster.reports.spreadsheet import render_csv, write_xlsx

FORMATS = ("html", "csv", "xlsx")


def _replace(target: Path, write) -> Path:
    partial = target.with_name(f".{target.name}.partial")
    try:
        write(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def write_report(report: Report, reports_dir: Path) -> dict[str, Path]:
    """{format: path} of the files written for `report`."""
    base = reports_dir / report.path
    base.parent.mkdir(parents=True, exist_ok=True)
    html, csv_text = render_html(report), render_csv(report)
    return {
        "html": _replace(base.with_name(base.name + ".html"), lambda p: p.write_text(html, encoding="utf-8")),
        "csv": _replace(base.with_name(base.name + ".csv"), lambda p: p.write_text(csv_text, encoding="utf-8", newline="")),
        "xlsx": _replace(base.with_name(base.name + ".xlsx"), lambda p: write_xlsx(report, p)),
    }
