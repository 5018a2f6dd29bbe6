"""Traffic statistics: windows over per-second rings, quantiles from buckets, bounded memory."""

from __future__ import annotations

import json
import math

import pytest

from juanie.engines.local.gateway.metrics import GatewayCollector, exposition
from juanie.engines.local.gateway.signals import (
    LATENCY_BUCKETS,
    RING_SECONDS,
    SeriesTotals,
    TrafficStats,
    WindowCounts,
    merge_totals,
    quantile,
)

KEY = ("shop-dev", "payment", "v1")


def test_window_counts_requests_errors_and_rate() -> None:
    stats = TrafficStats()
    now = 1_700_000_000.0
    for i in range(100):
        stats.record(KEY, 500 if i % 10 == 0 else 200, 0.004, now - 5 + i * 0.05)
    stats.record(KEY, 200, 0.004, now - 120)  # outside a 60 s window
    window = stats.window(KEY, 60, now)
    assert (window.requests, window.errors) == (100, 10)
    assert math.isclose(window.rate, 100 / 60)
    assert stats.window(KEY, 900, now).requests == 101
    assert stats.window(("x", "y", "z"), 60, now).requests == 0
    assert stats.window(("x", "y", "z"), 60, now).latency_p50 is None


def test_quantiles_follow_the_latency_distribution() -> None:
    stats = TrafficStats()
    now = 1_700_000_000.0
    for i in range(1000):
        stats.record(KEY, 200, 0.002 if i < 900 else 0.2, now)
    window = stats.window(KEY, 10, now)
    assert window.latency_p50 is not None and 0.001 <= window.latency_p50 <= 0.0025
    assert window.latency_p99 is not None and 0.15 <= window.latency_p99 <= 0.25
    assert window.latency_buckets[-1] == (LATENCY_BUCKETS[-1], 1000)
    cumulative = [n for _, n in window.latency_buckets]
    assert cumulative == sorted(cumulative)


def test_quantile_interpolates_like_prometheus() -> None:
    bounds = (0.1, 0.2, 0.4)
    assert quantile(0.5, bounds, [0, 10, 0, 0]) == pytest.approx(0.15)
    assert quantile(0.5, bounds, [0, 0, 0, 0]) is None
    assert quantile(0.99, bounds, [0, 0, 0, 5]) == 0.4  # above the last bound: report the bound


def test_ring_reuses_slots_so_old_seconds_do_not_leak_into_windows() -> None:
    stats = TrafficStats()
    start = 1_700_000_000.0
    stats.record(KEY, 500, 0.01, start)
    later = start + RING_SECONDS  # lands in the same slot
    stats.record(KEY, 200, 0.01, later)
    window = stats.window(KEY, 900, later)
    assert (window.requests, window.errors) == (1, 0)
    assert len(stats.series[KEY].ring) == RING_SECONDS


def test_silent_series_are_forgotten() -> None:
    stats = TrafficStats()
    stats.record(KEY, 200, 0.01, 1000.0)
    stats.record(("e", "s", "v2"), 200, 0.01, 1000.0 + RING_SECONDS + 5)
    assert stats.forget_older_than(1000.0 + RING_SECONDS + 5) == 1
    assert list(stats.series) == [("e", "s", "v2")]


def test_exposition_has_the_documented_families() -> None:
    stats = TrafficStats()
    stats.record(KEY, 200, 0.003, 1000.0)
    stats.record(KEY, 503, 0.3, 1000.0)
    text = exposition(GatewayCollector(stats.totals(), {("shop-dev", "payment", "connect"): 2}, 4)).decode()
    assert 'juanie_gateway_requests_total{code="200",env="shop-dev",service="payment",version="v1"} 1.0' in text
    assert 'juanie_gateway_requests_total{code="503",env="shop-dev",service="payment",version="v1"} 1.0' in text
    assert (
        'juanie_gateway_request_duration_seconds_bucket{env="shop-dev",le="0.005",service="payment",version="v1"} 1.0'
        in text
    )
    assert 'juanie_gateway_request_duration_seconds_count{env="shop-dev",service="payment",version="v1"} 2.0' in text
    assert 'juanie_gateway_upstream_errors_total{env="shop-dev",reason="connect",service="payment"} 2.0' in text
    assert "juanie_gateway_inflight_requests 4.0" in text


def test_two_processes_add_up_to_what_one_process_would_have_measured() -> None:
    """A gateway of several processes must report the same signals as one process that saw every request."""
    one, first, second = TrafficStats(), TrafficStats(), TrafficStats()
    now = 5000.0
    for i in range(200):
        code = 503 if i % 10 == 0 else 200
        seconds = 0.001 * (1 + i % 40)
        at = now - (i % 30)
        one.record(KEY, code, seconds, at)
        (first if i % 3 else second).record(KEY, code, seconds, at)
    together = first.window_counts(KEY, 60, now).add(second.window_counts(KEY, 60, now)).signals()
    assert together == one.window(KEY, 60, now)
    assert together.requests == 200 and together.errors == 20

    merged = merge_totals([first.totals(), second.totals()])
    (only,) = one.totals()
    assert len(merged) == 1
    assert merged[0].codes == only.codes
    assert merged[0].buckets == only.buckets
    assert merged[0].duration_sum == pytest.approx(only.duration_sum)


def test_counts_and_totals_survive_the_trip_between_processes() -> None:
    stats = TrafficStats()
    stats.record(KEY, 200, 0.02, 100.0)
    stats.record(("e", "s", "v2"), 502, 0.5, 100.0)
    counts = stats.window_counts(KEY, 30, 100.0)
    assert WindowCounts.from_wire(json.loads(json.dumps(counts.to_wire()))) == counts
    totals = stats.totals()
    assert [SeriesTotals.from_wire(json.loads(json.dumps(t.to_wire()))) for t in totals] == totals
    with pytest.raises(ValueError, match="latency buckets"):
        WindowCounts.from_wire([30, 1, 0, [1, 2]])
