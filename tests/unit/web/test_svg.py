"""The in-house SVG charts: well-formed markup, honest scales, gaps shown as gaps, labels escaped."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from juanie.web.svg import Series, format_number, line_chart, nice_ticks, sparkline

SVG = "{http://www.w3.org/2000/svg}"


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def _points(polyline: ET.Element) -> list[tuple[float, float]]:
    return [tuple(map(float, pair.split(","))) for pair in polyline.get("points", "").split()]  # type: ignore[misc]


@given(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(2, 10),
)
def test_nice_ticks_cover_the_range_with_even_round_steps(low: float, high: float, count: int) -> None:
    ticks = nice_ticks(low, high, count)
    assert ticks[0] <= min(low, high) + 1e-9 * max(1, abs(low))
    assert ticks[-1] >= max(low, high) - 1e-9 * max(1, abs(high))
    steps = [b - a for a, b in itertools.pairwise(ticks)]
    step = steps[0]
    assert step > 0 and all(math.isclose(s, step, rel_tol=1e-6) for s in steps)
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 2.5, 5, 10))


def test_nice_ticks_examples_and_errors() -> None:
    assert nice_ticks(0, 97) == [0, 25, 50, 75, 100]
    assert nice_ticks(0.013, 0.047) == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.05])
    with pytest.raises(ValueError, match="count >= 2"):
        nice_ticks(0, 1, 1)
    with pytest.raises(ValueError, match="finite"):
        nice_ticks(0, math.inf)


def test_format_number_is_compact() -> None:
    assert [format_number(v) for v in (0, 12, 0.05, 1234, 3_400_000, -2500)] == [
        "0",
        "12",
        "0.05",
        "1.23k",
        "3.4M",
        "-2.5k",
    ]


def test_sparkline_scales_highest_value_to_the_top_and_marks_the_last_point() -> None:
    root = _parse(sparkline([1, 5, 3], width=100, height=20, label="req/s"))
    assert root.get("aria-label") == "req/s"
    assert root.find(f"{SVG}title").text == "req/s"  # type: ignore[union-attr]
    (line,) = root.findall(f"{SVG}polyline")
    ys = [y for _, y in _points(line)]
    assert ys.index(min(ys)) == 1  # the largest value is highest on screen (smallest y)
    assert ys.index(max(ys)) == 0
    dot = root.find(f"{SVG}circle")
    assert dot is not None and float(dot.get("cx")) == pytest.approx(_points(line)[-1][0])  # type: ignore[arg-type]


def test_sparkline_breaks_the_line_at_missing_samples() -> None:
    root = _parse(sparkline([1, 2, None, 4, 5]))
    assert len(root.findall(f"{SVG}polyline")) == 2


def test_sparkline_without_data_draws_an_empty_baseline_and_rejects_tiny_sizes() -> None:
    root = _parse(sparkline([None, float("nan")]))
    assert root.find(f"{SVG}line").get("class") == "spark-empty"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="above 4"):
        sparkline([1], width=3)


def test_line_chart_draws_each_series_with_its_own_class_and_a_legend() -> None:
    chart = line_chart(
        [Series("stable", [(0, 1.0), (60, 2.0), (120, 1.5)]), Series("canary <v2>", [(0, 3.0), (120, 4.0)])],
        title="p95 latency",
    )
    root = _parse(chart)
    lines = root.findall(f"{SVG}polyline")
    assert [ln.get("class") for ln in lines] == ["chart-line series-0", "chart-line series-1"]
    legend = [t.text for t in root.findall(f"{SVG}text") if t.get("class") == "chart-legend"]
    assert legend == ["stable", "canary <v2>"]  # parsed back: it was escaped in the markup
    assert "canary &lt;v2&gt;" in chart


def test_line_chart_y_axis_covers_every_value() -> None:
    root = _parse(line_chart([Series("a", [(0, 3.0), (10, 97.0)])]))
    labels = [t.text for t in root.findall(f"{SVG}text") if t.get("class") == "chart-axis chart-y"]
    assert labels[0] == "0" and labels[-1] == "100"
    frame = root.find(f"{SVG}rect")
    top, bottom = float(frame.get("y")), float(frame.get("y")) + float(frame.get("height"))  # type: ignore[arg-type, union-attr]
    for _x, y in _points(root.findall(f"{SVG}polyline")[0]):
        assert top <= y <= bottom


def test_line_chart_without_data_says_so() -> None:
    root = _parse(line_chart([Series("a", [(0, None)])], empty_text="no requests yet"))
    assert [t.text for t in root.findall(f"{SVG}text")] == ["no requests yet"]
    with pytest.raises(ValueError, match="at least"):
        line_chart([], width=50)
