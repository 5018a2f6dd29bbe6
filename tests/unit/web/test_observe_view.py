"""The Observe pages' pure core: ranges, chart queries, shaping query answers into lines, alerts with their
silences, the matchers a silence starts from, and how values and log lines read."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from juanie.observe.matchers import parse_matchers
from juanie.observe.metrics.promql import parse
from juanie.web import observe_view as ov
from juanie.web import svg


def _matrix(*series: tuple[dict[str, str], list[tuple[float, str]]]) -> dict[str, object]:
    return {"resultType": "matrix", "result": [{"metric": m, "values": [[t, v] for t, v in vs]} for m, vs in series]}


@pytest.mark.parametrize(
    ("value", "key", "seconds", "step", "window"),
    [
        (None, "1h", 3600, 30, 120),
        ("", "1h", 3600, 30, 120),
        ("15m", "15m", 900, 8, 60),
        (" 6h ", "6h", 21600, 180, 720),
        ("24h", "24h", 86400, 720, 2880),
    ],
)
def test_parse_range_gives_about_120_points_and_a_rate_window_of_several_steps(
    value: str | None, key: str, seconds: float, step: float, window: float
) -> None:
    rng = ov.parse_range(value)
    assert (rng.key, rng.seconds, rng.step, rng.window) == (key, seconds, step, window)
    assert rng.seconds / rng.step <= ov.POINTS


@pytest.mark.parametrize("value", ["5m", "1d", "1H", "3600", "15m;drop"])
def test_parse_range_refuses_what_the_picker_does_not_offer(value: str) -> None:
    with pytest.raises(ov.RangeError, match="expected one of 15m, 1h, 6h, 24h"):
        ov.parse_range(value)


def test_selector_quotes_and_escapes_values_and_leaves_out_empty_ones() -> None:
    assert ov.selector({"env": "shop-dev", "service": ""}) == '{env="shop-dev"}'
    assert ov.selector({"service": 'a"b\\c'}, 'code=~"5.."') == '{service="a\\"b\\\\c",code=~"5.."}'


def test_chart_queries_parse_as_promql_and_name_the_environment_and_service() -> None:
    charts = ov.chart_queries("shop-dev", "cart", ov.parse_range("15m"))
    assert [c.key for c in charts] == ["rate", "errors", "latency", "cpu", "memory"]
    for chart in charts:
        for _legend, expr in chart.queries:
            parse(expr)  # the embedded engine's parser accepts every chart query
            assert 'env="shop-dev"' in expr and 'service="cart"' in expr
    errors = next(c for c in charts if c.key == "errors")
    assert errors.ratio and 'code=~"5.."' in errors.queries[0][1] and "code" not in errors.queries[1][1]
    assert "[60s]" in errors.queries[0][1]
    latency = next(c for c in charts if c.key == "latency")
    assert [legend for legend, _ in latency.queries] == ["p50", "p95", "p99"]
    assert "histogram_quantile(0.99," in latency.queries[2][1]
    everything = ov.chart_queries("shop-dev", "", 120.0)
    assert all("service=" not in expr for c in everything for _, expr in c.queries)
    parse(ov.services_query("shop-dev"))


def test_shape_names_lines_by_label_or_legend_scales_and_breaks_at_missing_samples() -> None:
    answer = _matrix(
        ({"service": "cart"}, [(100, "0.001"), (110, "0.002"), (150, "0.003")]),
        ({"service": "api"}, [(100, "NaN"), (110, "0.5")]),
    )
    lines = ov.shape([answer], [""], step=10, scale=1000)
    assert [s.name for s in lines] == ["api", "cart"]  # by name, so colours stay put between refreshes
    cart = lines[1].points
    assert cart[0] == (100, 1.0) and cart[1] == (110, 2.0)
    assert cart[2] == (130, None) and cart[3] == (150, 3.0)  # 40 s without a sample (4 steps) is a gap
    assert lines[0].points[0] == (100, None)  # NaN is no sample, not zero
    named = ov.shape([answer, _matrix(({}, [(100, "1")]))], ["p50", "p95"], step=10)
    assert [s.name for s in named] == ["p50", "p50", "p95"]
    assert ov.shape([{"resultType": "vector", "result": []}], [""], step=10) == []


def test_shape_keeps_the_six_busiest_lines() -> None:
    answer = _matrix(*(({"service": f"s{i}"}, [(0, str(i))]) for i in range(9)))
    lines = ov.shape([answer], [""], step=10)
    assert [s.name for s in lines] == ["s3", "s4", "s5", "s6", "s7", "s8"]


def test_ratio_is_errors_over_total_in_percent_and_zero_when_no_error_series_exists() -> None:
    errors = _matrix(({"service": "cart"}, [(10, "1"), (20, "2")]))
    total = _matrix(
        ({"service": "cart"}, [(10, "4"), (20, "4"), (30, "0")]),
        ({"service": "api"}, [(10, "5"), (20, "5")]),
    )
    lines = {s.name: s.points for s in ov.ratio(errors, total, step=10)}
    assert lines["cart"] == [(10, 25.0), (20, 50.0), (30, None)]  # no traffic: no ratio, not 0 %
    assert lines["api"] == [(10, 0.0), (20, 0.0)]  # traffic and no 5xx series at all: 0 %


def test_latest_is_the_newest_value_across_lines() -> None:
    lines = [svg.Series("a", [(1, 5.0), (3, None)]), svg.Series("b", [(2, 7.0)])]
    assert ov.latest(lines) == 7.0
    assert ov.latest([svg.Series("a", [(1, None)])]) is None


def test_value_formats_are_short_enough_for_an_axis() -> None:
    assert [ov.format_bytes(v) for v in (512, 12 * 1024, 1.5 * 1024**2, 57.2 * 1024**2, 2 * 1024**3)] == [
        "512B", "12KiB", "1.5MiB", "57MiB", "2GiB",
    ]  # fmt: skip
    assert ov.format_ms(12.5) == "12.5ms" and ov.format_ms(1500) == "1.5s"
    assert ov.format_percent(0.5) == "0.5%" and ov.format_rate(1200) == "1.2k/s"


def test_silence_matchers_from_an_alert_name_it_and_parse_back() -> None:
    labels = {"alertname": "HighErrorRate", "env": "shop-dev", "service": 'pay"ment', "severity": "P1", "team": "x"}
    text = ov.silence_matchers_for(labels)
    assert text == 'alertname="HighErrorRate",env="shop-dev",service="pay\\"ment"'
    parsed = parse_matchers(text)
    assert all(m.matches(labels) for m in parsed) and len(parsed) == 3
    assert ov.silence_matchers_for({}) == ""


def _alert(state: str, **labels: str) -> dict[str, object]:
    return {
        "state": state,
        "alertname": labels.get("alertname", "A"),
        "severity": labels.get("severity", "P2"),
        "labels": labels,
        "active_at": "2026-01-01T10:00:00+00:00",
        "fired_at": "2026-01-01T10:05:00" if state != "pending" else None,
        "resolved_at": "2026-01-01T11:00:00+00:00" if state == "resolved" else None,
    }


def test_alerts_are_marked_silenced_only_by_active_silences_whose_every_matcher_matches() -> None:
    silences = ov.active_silences(
        [
            {"id": "s1", "status": "active", "matchers": ['service="pay"', 'env=~"shop-.*"']},
            {"id": "s2", "status": "expired", "matchers": ['service="cart"']},
            {"id": "s3", "status": "active", "matchers": ['broken"']},  # unreadable: skipped, never fatal
        ]
    )
    assert [s.id for s in silences] == ["s1"]
    alerts = [
        _alert("firing", alertname="X", service="pay", env="shop-dev", severity="P1"),
        _alert("firing", alertname="Y", service="pay", env="other", severity="P0"),
        _alert("pending", alertname="Z", service="cart", env="shop-dev", severity="P3"),
        _alert("resolved", alertname="W", service="pay", env="shop-dev"),
    ]
    shown = {r.alert["alertname"]: r.shown_state for r in ov.alert_rows(alerts, silences, "active")}
    assert shown == {"X": "silenced", "Y": "firing", "Z": "pending"}
    assert [r.alert["alertname"] for r in ov.alert_rows(alerts, silences, "active")] == ["Y", "Z", "X"]
    assert [r.alert["alertname"] for r in ov.alert_rows(alerts, silences, "firing")] == ["Y"]
    assert [r.alert["alertname"] for r in ov.alert_rows(alerts, silences, "silenced")] == ["X"]
    assert [r.silenced_by for r in ov.alert_rows(alerts, silences, "resolved")] == [[]]


def test_an_alert_row_knows_since_when_and_its_silence_matchers() -> None:
    firing, pending, resolved = (ov.AlertRow(_alert(s, alertname="X", service="pay")) for s in
                                 ("firing", "pending", "resolved"))  # fmt: skip
    assert firing.since == datetime(2026, 1, 1, 10, 5, tzinfo=UTC)  # naive times from the store are UTC
    assert pending.since == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert resolved.since == datetime(2026, 1, 1, 11, 0, tzinfo=UTC)
    assert firing.matchers == 'alertname="X",service="pay"'
    assert ov.parse_time("not a time") is None and ov.parse_time(None) is None


def test_silences_split_by_status_with_times_parsed_and_relative_times_both_ways() -> None:
    items = [
        {"id": "a", "status": "active", "starts_at": "2026-01-01T10:00:00+00:00", "ends_at": None},
        {"id": "b", "status": "expired", "starts_at": None, "ends_at": "2026-01-01T09:00:00+00:00"},
        {"id": "c", "status": "active", "starts_at": None, "ends_at": None},
    ]
    groups = ov.split_silences(items)
    assert [s["id"] for s in groups["active"]] == ["a", "c"] and groups["pending"] == []
    assert groups["active"][0]["starts_at_time"] == datetime(2026, 1, 1, 10, tzinfo=UTC)
    now = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert ov.relative(datetime(2026, 1, 1, 12, 0, tzinfo=UTC), now, "en") == "in 2 hours"
    assert ov.relative(datetime(2026, 1, 1, 9, 57, tzinfo=UTC), now, "en") == "3 minutes ago"
    assert ov.relative(None, now, "en") == ""


def test_log_rows_read_in_utc_and_never_turn_an_odd_level_into_a_class() -> None:
    records = [
        SimpleNamespace(ts=0.0, level="error", service="cart", msg="boom", raw='{"msg": "boom"}'),
        SimpleNamespace(ts=3661.5, level="x y", service="api", msg="", raw="plain line"),
    ]
    rows = ov.log_rows(records)
    assert rows[0] == ov.LogRow("1970-01-01T00:00:00+00:00", "00:00:00", "error", "cart", "boom")
    assert (rows[1].clock, rows[1].level, rows[1].text) == ("01:01:01", "info", "plain line")
