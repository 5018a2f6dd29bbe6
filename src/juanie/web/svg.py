"""Charts drawn on the server as inline SVG: no chart library, no network, readable without JavaScript.

Pure functions from numbers to markup. Colours come from CSS classes (`series-0` …), so the charts follow the
light and dark themes; every chart carries a `<title>` so screen readers announce what it shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

Point = tuple[float, float | None]  # (x, y); y None is a gap (no sample), not zero


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[Point]


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 × 10ⁿ apart) covering [low, high], as people would label an axis."""
    if count < 2:
        raise ValueError(f"nice_ticks needs count >= 2, got {count}")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"nice_ticks needs finite bounds, got {low!r}..{high!r}")
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(high) * 0.5 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / (count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)
    start = math.floor(low / step + 1e-9) * step
    if start > low:  # the tolerance above absorbs float noise, never a real value below the first tick
        start -= step
    ticks = [start]
    # Float noise is judged against the smaller of the step and `high`: a step of 1000 must still cover 1e-6.
    while (ticks[-1] < high - min(step, max(1.0, abs(high))) * 1e-9 or len(ticks) < 2) and len(ticks) < 50:
        ticks.append(start + step * len(ticks))
    # 12 significant digits hide float noise (0.30000000000000004) without losing tiny ranges.
    return [float(f"{t:.12g}") for t in ticks]


def format_number(value: float) -> str:
    """Compact axis labels: 1.2k, 3.4M, 0.05, 12."""
    magnitude = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:.3g}{suffix}"
    if magnitude == 0:
        return "0"
    return f"{value:.3g}"


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def _runs(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Split a series at gaps, so a missing sample breaks the line instead of drawing a false slope."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if _finite(y) and math.isfinite(x):
            runs[-1].append((x, float(y)))  # type: ignore[arg-type]
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def sparkline(
    values: Sequence[float | None],
    *,
    width: int = 120,
    height: int = 28,
    label: str = "",
    css_class: str = "series-0",
) -> str:
    """A small trend line without axes; the last value is marked. Empty input draws a flat dashed baseline."""
    if width <= 4 or height <= 4:
        raise ValueError(f"sparkline needs width and height above 4, got {width}x{height}")
    title = f"<title>{escape(label)}</title>" if label else ""
    head = (
        f'<svg class="spark {escape(css_class)}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">{title}'
    )
    known = [float(v) for v in values if _finite(v)]  # type: ignore[arg-type]
    if not known:
        mid = _fmt(height / 2)
        return f'{head}<line class="spark-empty" x1="0" y1="{mid}" x2="{width}" y2="{mid}"/></svg>'
    low, high = min(known), max(known)
    span = high - low or 1.0
    pad = 2.0
    step = (width - 2 * pad) / max(len(values) - 1, 1)

    def y_of(v: float) -> float:
        if high == low:
            return height / 2
        return pad + (height - 2 * pad) * (1 - (v - low) / span)

    points = [(pad + i * step, v) for i, v in enumerate(values)]
    parts = [head]
    for run in _runs(points):
        coords = " ".join(f"{_fmt(x)},{_fmt(y_of(y))}" for x, y in run)
        if len(run) > 1:
            area = f"{_fmt(run[0][0])},{height} {coords} {_fmt(run[-1][0])},{height}"
            parts.append(f'<polygon class="spark-area" points="{area}"/>')
        parts.append(f'<polyline class="spark-line" points="{coords}"/>')
    last_x, last_y = next((p for p in reversed(points) if _finite(p[1])), points[-1])
    parts.append(f'<circle class="spark-dot" cx="{_fmt(last_x)}" cy="{_fmt(y_of(last_y))}" r="2"/>')  # type: ignore[arg-type]
    parts.append("</svg>")
    return "".join(parts)


def _time_label(x: float) -> str:
    return datetime.fromtimestamp(x, UTC).strftime("%H:%M")


def _x_labels(
    x_lo: float, x_hi: float, px: Callable[[float], float], y: float, x_format: Callable[[float], str]
) -> list[str]:
    """Five labels along the x axis (one when the data is a single instant)."""
    x_span = (x_hi - x_lo) or 1.0
    label_count = 2 if x_hi == x_lo else 5
    out = []
    for i in range(label_count if x_hi != x_lo else 1):
        x = x_lo + x_span * i / (label_count - 1) if x_hi != x_lo else x_lo
        anchor = "start" if i == 0 and x_hi != x_lo else ("end" if i == label_count - 1 else "middle")
        out.append(
            f'<text class="chart-axis chart-x" x="{px(x):.1f}" y="{y}" text-anchor="{anchor}">'
            f"{escape(x_format(x))}</text>"
        )
    return out


def line_chart(
    series: Sequence[Series],
    *,
    width: int = 640,
    height: int = 220,
    title: str = "",
    y_format: Callable[[float], str] = format_number,
    x_format: Callable[[float], str] = _time_label,
    y_min: float | None = None,
    empty_text: str = "no data yet",
    x_range: tuple[float, float] | None = None,
    y_top: float | None = None,
) -> str:
    """A line chart with a y grid, x labels (Unix seconds by default) and a legend; one class per series.

    ``x_range`` fixes the x axis (e.g. the last hour) so a chart shows where in the chosen window its data lies;
    without it the axis spans the data. Points outside the range are left out. ``y_top`` is a height the y axis
    reaches at least, so a flat zero line (no errors) sits on a 0…y_top axis instead of one padded below zero.
    """
    if width < 120 or height < 80:
        raise ValueError(f"line_chart needs at least 120x80, got {width}x{height}")
    left, right, top, bottom = 48, 12, 12, 40 if len(series) > 1 else 24
    plot_w, plot_h = width - left - right, height - top - bottom
    head = (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
    )
    if x_range is not None:
        lo, hi = x_range
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"line_chart needs a finite x_range with low < high, got {x_range!r}")
        series = [Series(s.name, [(x, y) for x, y in s.points if lo <= x <= hi]) for s in series]
    xs = [x for s in series for x, y in s.points if _finite(y) and math.isfinite(x)]
    ys = [float(y) for s in series for _, y in s.points if _finite(y)]  # type: ignore[arg-type]
    if not ys:
        # A fixed window still gets its time axis, so an empty chart says which span had no data.
        axis = ""
        if x_range is not None:
            lo, hi = x_range
            axis = "".join(
                _x_labels(lo, hi, lambda x: left + plot_w * (x - lo) / (hi - lo), top + plot_h + 16, x_format)
            )
        return (
            f'{head}<rect class="chart-frame" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>'
            f'<text class="chart-empty" x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" '
            f'text-anchor="middle">{escape(empty_text)}</text>{axis}</svg>'
        )
    low = min(ys) if y_min is None else min(y_min, min(ys))
    high = max(ys) if y_top is None else max(y_top, max(ys))
    ticks = nice_ticks(low, high, 5)
    y_lo, y_hi = ticks[0], ticks[-1]
    x_lo, x_hi = x_range if x_range is not None else (min(xs), max(xs))
    x_span = (x_hi - x_lo) or 1.0

    def px(x: float) -> float:
        return left + plot_w * ((x - x_lo) / x_span if x_hi != x_lo else 0.5)

    def py(y: float) -> float:
        return top + plot_h * (1 - (y - y_lo) / ((y_hi - y_lo) or 1.0))

    parts = [head, f'<rect class="chart-frame" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>']
    for tick in ticks:
        y = py(tick)
        parts.append(f'<line class="chart-grid" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="chart-axis chart-y" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(y_format(tick))}</text>"
        )
    parts.extend(_x_labels(x_lo, x_hi, px, top + plot_h + 16, x_format))
    for index, s in enumerate(series):
        css = f"series-{index % 6}"
        for run in _runs(s.points):
            coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in run)
            if len(run) == 1:
                parts.append(
                    f'<circle class="chart-dot {css}" cx="{px(run[0][0]):.1f}" cy="{py(run[0][1]):.1f}" r="2.5"/>'
                )
            else:
                parts.append(
                    f'<polyline class="chart-line {css}" points="{coords}"><title>{escape(s.name)}</title></polyline>'
                )
    if len(series) > 1:
        x = left
        for index, s in enumerate(series):
            css = f"series-{index % 6}"
            parts.append(
                f'<rect class="chart-key {css}" x="{x}" y="{height - 12}" width="10" height="4"/>'
                f'<text class="chart-legend" x="{x + 14}" y="{height - 8}">{escape(s.name)}</text>'
            )
            x += 24 + 7 * len(s.name)
    parts.append("</svg>")
    return "".join(parts)
