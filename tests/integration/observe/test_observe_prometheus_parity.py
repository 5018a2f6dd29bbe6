"""The embedded store + query engine against a real Prometheus scraping the same exporter.

Both scrape one prometheus_client exporter every second; the same expressions go to both backends and must
return the same shape and label sets, with values close. Tolerance: 25 % for rates and 20 % for quantiles,
because the two scrapers sample at different instants and ``rate`` extrapolates from wherever the samples fell.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from juanie.observe.metrics.prometheus_backend import PrometheusBackend, PrometheusError
from juanie.observe.metrics.query import QueryEngine
from juanie.observe.metrics.scrape import Scraper, ScrapeTarget
from juanie.observe.metrics.store import MetricStore

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="the prometheus binary is not installed (apt-get install prometheus)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def exporter() -> Iterator[str]:
    """A real exporter whose counter and histogram a background thread drives at a steady rate."""
    registry = CollectorRegistry()
    requests = Counter("demo_requests", "Requests.", ["code"], registry=registry)
    latency = Histogram("demo_latency_seconds", "Latency.", buckets=(0.05, 0.1, 0.25, 0.5, 1.0), registry=registry)
    port = _free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    stop = threading.Event()

    def drive() -> None:
        i = 0
        while not stop.wait(0.02):  # 50 ticks/s: 40 ok, 10 errors per second
            i += 1
            requests.labels("500" if i % 5 == 0 else "200").inc()
            latency.observe((0.03, 0.07, 0.2, 0.4, 0.8)[i % 5])

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    yield f"127.0.0.1:{port}"
    stop.set()
    driver.join(timeout=5)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def prometheus(tmp_path: Path, exporter: str) -> Iterator[str]:
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['{exporter}']\n"
    )
    assert PROMETHEUS is not None
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("Prometheus did not become ready within 60 s")
            time.sleep(0.1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _by_labels(result: dict) -> dict[tuple, object]:
    return {tuple(sorted(item["metric"].items())): item for item in result["result"]}


async def test_embedded_answers_match_prometheus(prometheus: str, exporter: str) -> None:
    store = MetricStore()
    scraper = Scraper(store, [ScrapeTarget("demo", f"http://{exporter}/metrics", interval=1, timeout=1)])
    backend = PrometheusBackend(prometheus)
    stop = asyncio.Event()
    task = asyncio.create_task(scraper.run(stop))
    try:
        deadline = time.monotonic() + 90
        while True:
            # both sides must hold every scrape of [end - 14 s, end]: a [10s] window over a 3-step range
            end = float(int(time.time()) - 3)  # Prometheus has ingested every scrape up to here
            ours = QueryEngine(store).query("count_over_time(up[14s])", end).samples()
            theirs = (await asyncio.to_thread(backend.query, "count_over_time(up[14s])", end)).samples()
            if ours and ours[0][1] >= 13 and theirs and theirs[0][1] >= 13:
                break
            assert time.monotonic() < deadline, "scrapes did not accumulate within 90 s"
            await asyncio.sleep(0.25)  # polling interval between checks of the condition above
    finally:
        stop.set()
        await task
        await scraper.aclose()
    engine = QueryEngine(store)
    expressions = {
        "sum by (code) (rate(demo_requests_total[10s]))": 0.25,
        'sum(rate(demo_requests_total{code="500"}[10s])) / sum(rate(demo_requests_total[10s]))': 0.25,
        "histogram_quantile(0.9, sum by (le) (rate(demo_latency_seconds_bucket[10s])))": 0.2,
        "up": 0.0,
    }
    for expr, tolerance in expressions.items():
        mine = engine.query_range(expr, end - 2, end, 1).to_dict()
        real = (await asyncio.to_thread(backend.query_range, expr, end - 2, end, 1)).to_dict()
        assert mine["resultType"] == real["resultType"] == "matrix", expr
        assert _by_labels(mine).keys() == _by_labels(real).keys(), expr
        for key, item in _by_labels(real).items():
            theirs = {t: float(v) for t, v in item["values"]}
            ours = {t: float(v) for t, v in _by_labels(mine)[key]["values"]}
            common = theirs.keys() & ours.keys()
            assert common, f"{expr}: no common timestamps"
            for t in common:
                assert ours[t] == pytest.approx(theirs[t], rel=tolerance, abs=1e-9), (expr, key, t)
        instant_mine = engine.query(expr, end).to_dict()
        instant_real = (await asyncio.to_thread(backend.query, expr, end)).to_dict()
        assert instant_mine["resultType"] == instant_real["resultType"] == "vector"
        assert _by_labels(instant_mine).keys() == _by_labels(instant_real).keys()
    with pytest.raises(PrometheusError, match="bad_data"):
        backend.query("rate(", end)
    backend.close()
