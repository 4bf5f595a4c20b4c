"""Charts as inline SVG, drawn in Python: no script, no CDN, so they render offline, in the
Airflow UI and in an e-mailed report alike.

Okabe-Ito colours (distinguishable with the common colour-vision deficiencies), a title, axes
with round ticks, labelled series, and each bar's value in its tooltip (``<title>``).
"""

from __future__ import annotations

import math
from html import escape

from edihub.kpi.figures import Chart

# Okabe & Ito (2008), "Color Universal Design": blue, orange, bluish green, reddish purple...
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
INK, GRID, MUTED = "#1f2933", "#e4e7eb", "#616e7c"
WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 58, 48
MAX_X_LABELS = 12


def _ticks(top: float, wanted: int = 5) -> list[float]:
    """Round steps (1, 2, 2.5, 5 × 10^n) from 0 to at least ``top``."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / wanted
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def _fmt(value: float, percent: bool = False) -> str:
    text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{text} %" if percent else text


def _text(x: float, y: float, body: str, anchor: str = "middle", size: int = 11,
          colour: str = MUTED, extra: str = "") -> str:  # fmt: skip
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'fill="{colour}"{extra}>{escape(body)}</text>')  # fmt: skip


def _frame(chart: Chart, height: int, body: list[str]) -> str:
    label = f"{chart.title}: " + "; ".join(
        f"{s.name} " + ", ".join(f"{c} {_fmt(v, chart.percent)}"
                                 for c, v in zip(chart.categories, s.values, strict=True))
        for s in chart.series
    )  # fmt: skip
    head = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-label="{escape(label[:2000])}" font-family="system-ui, sans-serif">',
        f"<title>{escape(chart.title)}</title>",
        _text(LEFT - 52, 20, chart.title, "start", 15, INK, ' font-weight="600"'),
    ]
    # Legend under the title, one swatch per series.
    x = LEFT - 52.0
    for i, s in enumerate(chart.series):
        head.append(f'<rect x="{x:.1f}" y="31" width="12" height="12" rx="2" '
                    f'fill="{PALETTE[i % len(PALETTE)]}"/>')  # fmt: skip
        head.append(_text(x + 17, 41, s.name, "start", 12, INK))
        x += 30 + 7 * len(s.name)
    if not chart.categories:
        body = [_text(WIDTH / 2, height / 2, "No data yet", size=13)]
    return "".join([*head, *body, "</svg>"])


def _y_axis(top: float, plot_h: float, percent: bool, y_label: str) -> tuple[list[str], float]:
    ticks = _ticks(top)
    scale = plot_h / ticks[-1]
    out = []
    for t in ticks:
        y = TOP + plot_h - t * scale
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="{GRID}"/>')  # fmt: skip
        out.append(_text(LEFT - 6, y + 4, _fmt(t, percent), "end"))
    out.append(_text(14, TOP + plot_h / 2, y_label, extra=f' transform="rotate(-90 14 '
                     f'{TOP + plot_h / 2:.1f})"'))  # fmt: skip
    return out, scale


def _columns(chart: Chart) -> str:
    """Line, stacked or grouped bars over categories on the x axis."""
    height, plot_w = HEIGHT, WIDTH - LEFT - RIGHT
    plot_h = height - TOP - BOTTOM
    n = max(len(chart.categories), 1)
    stacked = chart.kind == "stacked"
    sums = [sum(s.values[i] for s in chart.series) for i in range(len(chart.categories))]
    peak = max(sums if stacked else [v for s in chart.series for v in s.values], default=0)
    body, scale = _y_axis(peak, plot_h, chart.percent, chart.y_label)
    slot = plot_w / n
    base_y = TOP + plot_h
    if chart.kind == "line":
        for k, s in enumerate(chart.series):
            colour = PALETTE[k % len(PALETTE)]
            points = [(LEFT + slot * (i + 0.5), base_y - v * scale) for i, v in enumerate(s.values)]
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                        f'stroke-width="2.5"/>')  # fmt: skip
            for (x, y), c, v in zip(points, chart.categories, s.values, strict=True):
                r = 2.5 if n > 40 else 3.5
                body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{colour}">'
                            f"<title>{escape(c)}: {_fmt(v)}</title></circle>")  # fmt: skip
            if points:  # the last value, written: what a reader looks for first
                x, y = points[-1]
                body.append(_text(x - 4, y - 8, _fmt(s.values[-1]), "end", 12, INK))
    else:
        bars = 1 if stacked else len(chart.series)
        bar_w = slot * 0.8 / bars
        for i, category in enumerate(chart.categories):
            under = 0.0
            for k, s in enumerate(chart.series):
                v = s.values[i]
                x = LEFT + slot * i + slot * 0.1 + (0 if stacked else k * bar_w)
                y = base_y - (under + v) * scale
                body.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                    f'height="{v * scale:.1f}" fill="{PALETTE[k % len(PALETTE)]}">'
                    f"<title>{escape(category)} · {escape(s.name)}: "
                    f"{_fmt(v, chart.percent)}</title></rect>"
                )
                if not stacked and n <= 4 and v:  # few bars: their value on top
                    body.append(_text(x + bar_w / 2, y - 5, _fmt(v, chart.percent), size=12,
                                      colour=INK))  # fmt: skip
                if stacked:
                    under += v
            if stacked and n <= MAX_X_LABELS and sums[i]:
                body.append(_text(LEFT + slot * (i + 0.5), base_y - sums[i] * scale - 5,
                                  _fmt(sums[i]), colour=INK))  # fmt: skip
    every = math.ceil(n / MAX_X_LABELS)
    for i, category in enumerate(chart.categories):
        if i % every == 0:
            body.append(_text(LEFT + slot * (i + 0.5), base_y + 16, category))
    if chart.marker_after in chart.categories:
        x = LEFT + slot * (chart.categories.index(chart.marker_after) + 1)
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP - 4}" y2="{base_y}" '
                    f'stroke="{INK}" stroke-width="1.5" stroke-dasharray="5 4"/>')  # fmt: skip
        body.append(_text(x + 4, TOP + 8, chart.marker_label or "", "start", 12, INK))
    body.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base_y}" y2="{base_y}" '
                f'stroke="{INK}"/>')  # fmt: skip
    body.append(_text(LEFT + plot_w / 2, height - 8, chart.x_label))
    return _frame(chart, height, body)


def _hbars(chart: Chart) -> str:
    """One bar per category, horizontal: long lists of names (insurers) stay readable."""
    [s] = chart.series
    row = 18
    left = 12 + 7 * max((len(c) for c in chart.categories), default=4)
    height = TOP + row * max(len(chart.categories), 1) + 36
    plot_w = WIDTH - left - RIGHT - 40
    ticks = _ticks(max(s.values, default=0))
    scale = plot_w / ticks[-1]
    body = []
    for t in ticks:
        x = left + t * scale
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{height - 30}" '
                    f'stroke="{GRID}"/>')  # fmt: skip
        body.append(_text(x, height - 16, _fmt(t)))
    for i, (category, v) in enumerate(zip(chart.categories, s.values, strict=True)):
        y = TOP + i * row
        body.append(_text(left - 6, y + 13, category, "end", 11, INK))
        body.append(f'<rect x="{left}" y="{y + 2:.1f}" width="{v * scale:.1f}" '
                    f'height="{row - 5}" fill="{PALETTE[0]}"><title>{escape(category)}: '
                    f"{_fmt(v)}</title></rect>")  # fmt: skip
        body.append(_text(left + v * scale + 4, y + 13, _fmt(v), "start", 11, INK))
    body.append(_text(left + plot_w / 2, height - 2, chart.y_label))
    return _frame(chart, height, body)


def svg(chart: Chart) -> str:
    """The chart as an ``<svg>`` element, to inline in HTML."""
    return _hbars(chart) if chart.kind == "hbars" else _columns(chart)
