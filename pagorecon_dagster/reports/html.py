"""A report as one self-contained HTML page: inline CSS and SVG, no script, font or image from
anywhere (the Content-Security-Policy forbids fetching anything, so it reads the same offline)."""

from __future__ import annotations

from html import escape

from pagorecon_dagster.reports.content import Chart, Report, Table, cell_text
from pagorecon_dagster.reports.safety import FREE_TEXT

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #212121;
       margin: 24px; max-width: 1400px; font-size: 14px; line-height: 1.4; background: #fff; }
h1 { font-size: 22px; margin: 0 0 8px; }
h2 { font-size: 17px; margin: 28px 0 6px; border-bottom: 2px solid #90a4ae; padding-bottom: 3px; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 0 0 8px; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
p.note { color: #555; margin: 2px 0 8px; font-size: 13px; }
p.empty { color: #555; font-style: italic; }
section { overflow-x: auto; }
table { border-collapse: collapse; margin: 4px 0 8px; font-size: 13px; }
table.wide { width: calc(100% - 2px); }  /* the collapsed outer border would overflow by a pixel */
th, td { border: 1px solid #cfd8dc; padding: 4px 6px; vertical-align: top; text-align: left; }
th { background: #eceff1; font-weight: 600; }
td.date { white-space: nowrap; }
td.money, td.count { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.free_text { min-width: 200px; font-size: 12px; }
tr.total td { font-weight: 700; background: #f5f5f5; }
figure { margin: 8px 0; overflow-x: auto; }
footer { margin-top: 32px; color: #616161; font-size: 12px; border-top: 1px solid #cfd8dc; padding-top: 8px; }
@media print { body { margin: 8mm; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'"


def _table(table: Table, empty_text: str) -> str:
    parts = [f'<section><h2>{escape(table.title)}</h2>']
    if table.note:
        parts.append(f'<p class="note">{escape(table.note)}</p>')
    head = "".join(f'<th scope="col">{escape(c.label)}</th>' for c in table.columns)
    wide = ' class="wide"' if any(c.kind == FREE_TEXT for c in table.columns) else ""  # sentences get the page's width
    parts.append(f'<table data-table="{escape(table.key)}"{wide}><thead><tr>{head}</tr></thead><tbody>')
    for index, row in enumerate(table.rows):
        css = ' class="total"' if index in table.total_rows else ""
        cells = "".join(
            f'<td class="{c.kind}">{escape(cell_text(c, v))}</td>' for c, v in zip(table.columns, row)
        )
        parts.append(f"<tr{css}>{cells}</tr>")
    parts.append("</tbody></table>")
    if not table.rows:
        parts.append(f'<p class="empty">{escape(empty_text)}</p>')
    parts.append("</section>")
    return "".join(parts)


def _chart(chart: Chart) -> str:
    return f"<section><h2>{escape(chart.title)}</h2><figure>{chart.svg}</figure></section>"


def render_html(report: Report) -> str:
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in report.facts)
    blocks = [_chart(b) if isinstance(b, Chart) else _table(b, report.empty_text) for b in report.blocks]
    return (
        f'<!DOCTYPE html>\n<html lang="{report.language}"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report.title)}</title><style>{CSS}</style></head>\n<body>"
        f"<header><h1>{escape(report.title)}</h1><dl class=\"facts\">{facts}</dl></header>\n"
        + "\n".join(blocks)
        + f"\n<footer>{escape(report.footer)}</footer></body></html>\n"
    )
