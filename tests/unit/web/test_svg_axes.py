"""Line charts on a fixed time axis (the range picker's window) and with a least y height (flat zero lines)."""

from __future__ import annotations

import re

import pytest

from juanie.web.svg import Series, line_chart


def _points(svg: str) -> list[tuple[float, float]]:
    found = re.search(r'<polyline class="chart-line[^"]*" points="([^"]+)"', svg)
    assert found, svg
    return [tuple(float(v) for v in p.split(",")) for p in found.group(1).split()]  # type: ignore[misc]


def test_x_range_places_the_data_where_it_lies_in_the_window_and_drops_what_is_outside() -> None:
    line = [Series("a", [(0, 1.0), (900, 2.0), (950, 3.0), (1000, 4.0)])]
    fixed = line_chart(line, width=640, height=200, x_range=(100.0, 1000.0), x_format=lambda x: f"t{x:g}")
    left, plot_w = 48, 640 - 48 - 12
    xs = [x for x, _ in _points(fixed)]
    assert len(xs) == 3  # the sample at 0 is before the window
    assert xs[0] == pytest.approx(left + plot_w * 800 / 900, abs=0.1)
    assert xs[-1] == pytest.approx(left + plot_w, abs=0.1)
    assert ">t100<" in fixed and ">t1000<" in fixed  # the axis is labelled with the window, not the data
    spanning = line_chart(line, width=640, height=200)
    assert _points(spanning)[0][0] == pytest.approx(left, abs=0.1)


def test_x_range_must_be_a_real_interval() -> None:
    with pytest.raises(ValueError, match="x_range"):
        line_chart([Series("a", [(1, 1.0)])], x_range=(5.0, 5.0))


def test_y_top_keeps_a_flat_zero_line_on_a_positive_axis() -> None:
    flat = [Series("errors", [(0, 0.0), (10, 0.0)])]
    padded = line_chart(flat, y_min=0)
    assert ">-1<" in padded  # without a least height the axis pads below zero
    topped = line_chart(flat, y_min=0, y_top=1.0)
    labels = re.findall(r'class="chart-axis chart-y"[^>]*>([^<]+)<', topped)
    assert labels[0] == "0" and labels[-1] == "1" and not any(label.startswith("-") for label in labels)
    tall = line_chart([Series("errors", [(0, 0.0), (10, 40.0)])], y_min=0, y_top=1.0)
    assert re.findall(r'class="chart-axis chart-y"[^>]*>([^<]+)<', tall)[-1] == "40"  # data above y_top wins


def test_an_empty_chart_on_a_fixed_window_still_shows_which_span_had_no_data() -> None:
    empty = line_chart([], x_range=(0.0, 3600.0), empty_text="no data", x_format=lambda x: f"t{x:g}")
    assert ">no data<" in empty
    assert re.findall(r'class="chart-axis chart-x"[^>]*>([^<]+)<', empty) == ["t0", "t900", "t1800", "t2700", "t3600"]
    assert "chart-x" not in line_chart([], empty_text="no data")
