"""Charts as inline SVG, drawn here: the HTML page needs no script, font or image from anywhere.
Geometry is integer arithmetic on céntimos and counts (no float touches an amount)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

WIDTH = 1000
LABEL_WIDTH = 300
VALUE_WIDTH = 130
BAR_AREA = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 20
ROW_HEIGHT = 28
BAR_HEIGHT = 18
LEGEND_HEIGHT = 30
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif" font-size="13"'

GREEN, RED, AMBER, GREY, BLUE = "#2e7d32", "#c62828", "#f2a900", "#9e9e9e", "#1565c0"


def _svg(height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" {FONT}><title>{escape(title)}</title>'
        + "".join(body) + "</svg>"
    )


def _label(x: int, y: int, text: str, anchor: str = "start", weight: str = "normal") -> str:
    return f'<text x="{x}" y="{y}" text-anchor="{anchor}" font-weight="{weight}" fill="#212121">{escape(text)}</text>'


def _clip(text: str, limit: int = 36) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def stacked_bars(
    title: str,
    rows: Sequence[tuple[str, Sequence[int]]],
    legend: Sequence[tuple[str, str]],
    show: Callable[[int], str] = str,
) -> str:
    """One horizontal bar per row, split into segments (legend: (name, colour) per segment);
    the row's total is written at the bar's end."""
    top = LEGEND_HEIGHT + 6
    height = top + max(len(rows), 1) * ROW_HEIGHT + 8
    biggest = max([sum(values) for _, values in rows] + [1])
    body = []
    x = 0
    for name, colour in legend:
        body.append(f'<rect x="{x}" y="6" width="14" height="14" fill="{colour}"/>')
        body.append(_label(x + 20, 18, name))
        x += 30 + 8 * len(name)
    for index, (label, values) in enumerate(rows):
        y = top + index * ROW_HEIGHT
        body.append(_label(LABEL_WIDTH - 8, y + BAR_HEIGHT - 4, _clip(label), anchor="end"))
        x = LABEL_WIDTH
        for value, (name, colour) in zip(values, legend):
            if value <= 0:
                continue
            width = max(value * BAR_AREA // biggest, 2)
            body.append(
                f'<rect x="{x}" y="{y}" width="{width}" height="{BAR_HEIGHT}" fill="{colour}">'
                f"<title>{escape(label)} · {escape(name)}: {escape(show(value))}</title></rect>"
            )
            x += width
        body.append(_label(x + 6, y + BAR_HEIGHT - 4, show(sum(values))))
    if not rows:
        body.append(_label(LABEL_WIDTH, top + BAR_HEIGHT - 4, "—"))
    return _svg(height, title, body)


def waterfall(title: str, steps: Sequence[tuple[str, int, bool]], show: Callable[[int], str]) -> str:
    """Horizontal waterfall: each step (label, céntimos, is_total) is a bar from the running total
    before it to the one after; totals are drawn from zero. Rises green, falls red, totals blue."""
    running, spans = 0, []
    for label, value, is_total in steps:
        if is_total:
            spans.append((label, 0, value, value, BLUE))
            running = value
        else:
            spans.append((label, running, running + value, value, GREEN if value >= 0 else RED))
            running += value
    low = min([0] + [min(a, b) for _, a, b, _, _ in spans])
    high = max([1] + [max(a, b) for _, a, b, _, _ in spans])
    scale = max(high - low, 1)

    def at(value: int) -> int:
        return LABEL_WIDTH + (value - low) * BAR_AREA // scale

    top = 8
    height = top + max(len(spans), 1) * ROW_HEIGHT + 8
    body = [f'<line x1="{at(0)}" y1="0" x2="{at(0)}" y2="{height}" stroke="#757575" stroke-width="1"/>']
    for index, (label, start, end, value, colour) in enumerate(spans):
        y = top + index * ROW_HEIGHT
        left, right = sorted((at(start), at(end)))
        body.append(_label(LABEL_WIDTH - 8, y + BAR_HEIGHT - 4, _clip(label), anchor="end"))
        body.append(
            f'<rect x="{left}" y="{y}" width="{max(right - left, 2)}" height="{BAR_HEIGHT}" fill="{colour}">'
            f"<title>{escape(label)}: {escape(show(value))}</title></rect>"
        )
        body.append(_label(LABEL_WIDTH + BAR_AREA + 12, y + BAR_HEIGHT - 4, show(value), weight="bold" if colour == BLUE else "normal"))
    return _svg(height, title, body)
