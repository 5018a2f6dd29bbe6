"""The embedded query engine against hand-computed answers on synthetic series."""

from __future__ import annotations

import math

import numpy as np
import pytest

from juanie.observe.metrics import functions as fn
from juanie.observe.metrics.model import Series
from juanie.observe.metrics.query import QueryEngine, QueryError
from juanie.observe.metrics.result import format_value
from juanie.observe.metrics.store import MetricStore

T0 = 1_700_000_000.0


def counter_store() -> MetricStore:
    """Counters sampled every 15 s: a/200 += 10, a/500 += 1, b/200 += 5 per sample."""
    store = MetricStore()
    for i in range(200):
        ts = T0 + 15 * i
        store.append("req_total", {"service": "a", "code": "200"}, 10 * i, ts)
        store.append("req_total", {"service": "a", "code": "500"}, i, ts)
        store.append("req_total", {"service": "b", "code": "200"}, 5 * i, ts)
    return store


def values(result: dict) -> dict[tuple, float]:
    return {tuple(sorted(item["metric"].items())): float(item["value"][1]) for item in result["result"]}


def test_rate_extrapolates_like_prometheus() -> None:
    # window [t-60, t] at t = T0+1000: samples at offsets 945, 960, 975, 990 -> 3 increments of 10 over 45 s;
    # 15 s to the start edge and 10 s to the end edge are both under 1.1 x 15 s, so extrapolate to the full 60 s.
    engine = QueryEngine(counter_store())
    got = values(engine.query('rate(req_total{service="a",code="200"}[1m])', T0 + 1000).to_dict())
    assert got == {(("code", "200"), ("service", "a")): pytest.approx(30 * (60 / 45) / 60)}


def test_sum_by_and_ratio_of_errors() -> None:
    engine = QueryEngine(counter_store())
    summed = values(engine.query("sum by (service) (rate(req_total[1m]))", T0 + 1000).to_dict())
    # per series: increments over 45 s extrapolated to 60 s, divided by 60 s -> (30 + 3) / 45 for a, 15 / 45 for b
    assert summed == {(("service", "a"),): pytest.approx(33 / 45), (("service", "b"),): pytest.approx(15 / 45)}
    ratio = values(
        engine.query(
            'sum by (service) (rate(req_total{code=~"5.."}[1m])) / sum by (service) (rate(req_total[1m]))', T0 + 1000
        ).to_dict()
    )
    assert ratio == {(("service", "a"),): pytest.approx(1 / 11)}


def test_increase_handles_a_counter_reset() -> None:
    store = MetricStore()
    for i, v in enumerate([0, 10, 20, 5, 15]):  # reset after 20: the true increase is 20 + 15 = 35
        store.append("c_total", {}, v, T0 + 10 * i)
    got = QueryEngine(store).query("increase(c_total[40s])", T0 + 40).to_dict()
    # samples cover the whole 40 s window exactly: no extrapolation
    assert float(got["result"][0]["value"][1]) == pytest.approx(35)


def test_avg_and_max_over_time_and_aggregations() -> None:
    store = MetricStore()
    for i, v in enumerate([1, 5, 3, 7]):
        store.append("g", {"pod": "x", "svc": "s"}, v, T0 + i)
        store.append("g", {"pod": "y", "svc": "s"}, v * 2, T0 + i)
    engine = QueryEngine(store)
    assert values(engine.query('avg_over_time(g{pod="x"}[10s])', T0 + 3).to_dict())[(("pod", "x"), ("svc", "s"))] == 4
    assert values(engine.query('max_over_time(g{pod="y"}[2s])', T0 + 3).to_dict())[(("pod", "y"), ("svc", "s"))] == 14
    assert values(engine.query("avg by (svc) (g)", T0 + 3).to_dict()) == {(("svc", "s"),): 10.5}
    assert values(engine.query("count(g)", T0 + 3).to_dict()) == {(): 2}
    assert values(engine.query("min without (pod) (g)", T0 + 3).to_dict()) == {(("svc", "s"),): 7}


def test_histogram_quantile_interpolates_within_the_bucket() -> None:
    buckets = [
        ({"le": "0.1"}, np.array([50.0])),
        ({"le": "0.5"}, np.array([90.0])),
        ({"le": "+Inf"}, np.array([100.0])),
    ]
    # rank for q=0.7 is 70 -> inside (0.1, 0.5]: 0.1 + 0.4 * (70-50)/(90-50) = 0.3
    ((labels, result),) = fn.histogram_quantile(0.7, buckets)
    assert labels == {} and result[0] == pytest.approx(0.3)
    # rank 95 lands in +Inf: Prometheus answers the largest finite bound
    assert fn.histogram_quantile(0.95, buckets)[0][1][0] == pytest.approx(0.5)
    # without +Inf there is no answer
    assert math.isnan(fn.histogram_quantile(0.5, buckets[:2])[0][1][0])


def test_histogram_quantile_through_the_engine() -> None:
    store = MetricStore()
    for i in range(5):
        ts = T0 + 15 * i
        for le, per_step in (("0.1", 5), ("0.5", 9), ("+Inf", 10)):
            store.append("lat_bucket", {"le": le, "service": "a"}, per_step * i, ts)
    got = values(
        QueryEngine(store)
        .query("histogram_quantile(0.7, sum by (service, le) (rate(lat_bucket[1m])))", T0 + 60)
        .to_dict()
    )
    assert got == {(("service", "a"),): pytest.approx(0.1 + 0.4 * (7 - 5) / (9 - 5))}


def test_query_range_has_prometheus_matrix_shape() -> None:
    engine = QueryEngine(counter_store())
    result = engine.query_range('sum by (service) (increase(req_total{service="b"}[1m]))', T0 + 600, T0 + 660, 30)
    data = result.to_dict()
    assert data["resultType"] == "matrix"
    assert [item["metric"] for item in data["result"]] == [{"service": "b"}]
    stamps = [point[0] for point in data["result"][0]["values"]]
    assert stamps == [int(T0 + 600), int(T0 + 630), int(T0 + 660)]
    assert all(isinstance(point[1], str) for point in data["result"][0]["values"])


def test_comparison_filters_and_bool_returns_zero_one() -> None:
    engine = QueryEngine(counter_store())
    at = T0 + 1000
    kept = engine.query("rate(req_total[1m]) > 0.1", at).to_dict()["result"]
    assert {item["metric"]["service"] + item["metric"]["code"] for item in kept} == {"a200", "b200"}
    named = engine.query("req_total > 600", at).to_dict()["result"]
    assert [item["metric"]["__name__"] for item in named] == ["req_total"]  # a filter keeps the name, as Prometheus
    flags = values(engine.query("rate(req_total[1m]) > bool 0.1", at).to_dict())
    assert sorted(flags.values()) == [0.0, 1.0, 1.0]


def test_scalar_answers_and_missing_data() -> None:
    engine = QueryEngine(MetricStore())
    assert engine.query("1 + 2 * 3", T0).to_dict() == {"resultType": "scalar", "result": [int(T0), "7"]}
    assert engine.query("up", T0).to_dict() == {"resultType": "vector", "result": []}


def test_stale_series_disappear_after_the_lookback() -> None:
    store = MetricStore()
    store.append("g", {}, 1.0, T0)
    engine = QueryEngine(store)
    assert engine.query("g", T0 + 299).samples() == [({"__name__": "g"}, 1.0)]
    assert engine.query("g", T0 + 301).samples() == []


def test_many_to_many_is_a_clear_error_and_bad_steps_rejected() -> None:
    engine = QueryEngine(counter_store())
    with pytest.raises(QueryError, match="many-to-many"):
        engine.query("rate(req_total[1m]) / on (service) rate(req_total[1m])", T0 + 1000)
    with pytest.raises(QueryError, match="step must be a positive"):
        engine.query_range("up", T0, T0 + 10, 0)
    with pytest.raises(QueryError, match="limit is 11000"):
        engine.query_range("up", T0, T0 + 100_000, 1)


def test_rate_kernel_needs_two_samples() -> None:
    series = Series("c", {}, np.array([T0]), np.array([1.0]))
    assert np.isnan(fn.rate(series, 60, np.array([T0 + 1]))).all()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.1, "0.1"),
        (1e-05, "0.00001"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
        (1234567.5, "1234567.5"),
    ],
)
def test_values_format_like_go(value: float, text: str) -> None:
    assert format_value(value) == text
