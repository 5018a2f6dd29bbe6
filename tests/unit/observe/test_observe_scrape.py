"""Scraping: exposition parsing and a Scraper against a real prometheus_client endpoint."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from juanie.observe.metrics.query import QueryEngine
from juanie.observe.metrics.scrape import ScrapeError, Scraper, ScrapeTarget, parse_exposition
from juanie.observe.metrics.store import MetricStore

TEXT = """# HELP req_total Requests.
# TYPE req_total counter
req_total{code="200"} 7
req_total{code="500"} 1
# TYPE temp gauge
temp 21.5
# TYPE lat histogram
lat_bucket{le="0.1"} 3
lat_bucket{le="+Inf"} 4
lat_sum 0.9
lat_count 4
"""


def test_parse_exposition_labels_types_and_values() -> None:
    parsed = parse_exposition(TEXT, 100.0, {"job": "api", "instance": "h:1"})
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in parsed.samples}
    assert got[("req_total", (("code", "500"), ("instance", "h:1"), ("job", "api")))] == 1
    assert got[("temp", (("instance", "h:1"), ("job", "api")))] == 21.5
    assert got[("lat_bucket", (("instance", "h:1"), ("job", "api"), ("le", "+Inf")))] == 4
    assert parsed.types["req_total"] == "counter" and parsed.types["temp"] == "gauge"
    assert parsed.types["lat_bucket"] == "counter"
    assert all(s.ts == 100.0 for s in parsed.samples)


def test_parse_exposition_rejects_garbage() -> None:
    with pytest.raises(ScrapeError, match="not Prometheus text exposition format"):
        parse_exposition("this is { not metrics", 0.0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def exporter() -> Iterator[tuple[str, Counter, Histogram]]:
    registry = CollectorRegistry()
    counter = Counter("demo_requests", "Requests.", ["code"], registry=registry)
    histogram = Histogram("demo_latency_seconds", "Latency.", buckets=(0.1, 0.5), registry=registry)
    port = _free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield f"http://127.0.0.1:{port}/metrics", counter, histogram
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


async def test_scraper_records_samples_up_and_duration(exporter) -> None:
    url, counter, histogram = exporter
    counter.labels("200").inc(5)
    histogram.observe(0.3)
    clock = iter([1000.0, 1000.01, 1015.0, 1015.02])
    store = MetricStore()
    scraper = Scraper(store, [ScrapeTarget("demo", url, interval=15, timeout=5)], clock=lambda: next(clock))
    health = await scraper.scrape_once(scraper.targets[0])
    counter.labels("200").inc(3)
    await scraper.scrape_once(scraper.targets[0])
    await scraper.aclose()
    assert health.up and health.samples > 0
    engine = QueryEngine(store)
    instance = url.split("/")[2]
    assert engine.query("up", 1015).samples() == [({"__name__": "up", "instance": instance, "job": "demo"}, 1.0)]
    assert engine.query('demo_requests_total{code="200"}', 1015).samples()[0][1] == 8.0
    assert engine.query("demo_latency_seconds_bucket", 1015).samples()
    duration = engine.query("scrape_duration_seconds", 1015).samples()[0][1]
    assert duration == pytest.approx(0.02)


async def test_dead_target_is_down_with_a_reason() -> None:
    store = MetricStore()
    target = ScrapeTarget("dead", f"http://127.0.0.1:{_free_port()}/metrics", interval=15, timeout=2)
    scraper = Scraper(store, [target], clock=lambda: 500.0)
    health = await scraper.scrape_once(target)
    await scraper.aclose()
    assert not health.up and "failed" in (health.last_error or "")
    assert QueryEngine(store).query("up == 0", 500).samples()[0][0]["job"] == "dead"


def test_target_validation() -> None:
    with pytest.raises(ValueError, match="timeout 20s exceeds interval 15s"):
        ScrapeTarget("x", "http://a/metrics", interval=15, timeout=20)
    with pytest.raises(ValueError, match="must start with http"):
        ScrapeTarget("x", "ftp://a/metrics")
