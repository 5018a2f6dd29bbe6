"""Traffic policy through a real gateway: weights, forced tracks, retries, timeouts, injected faults."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests.integration.gateway.gateway_helpers import Backend, GatewayProc, free_port, load, route

# Each test runs twice: with the gateway's C fast path for plain heads, and with httptools for every head.
pytestmark = pytest.mark.parametrize("gateway", ["fast path", "httptools"], indirect=True)


def _b(version: str, track: str, weight: int, *backends: Backend, endpoints: list[str] | None = None) -> dict:
    return {
        "version": version,
        "track": track,
        "weight": weight,
        "endpoints": endpoints if endpoints is not None else [b.endpoint for b in backends],
    }


async def test_weights_split_traffic_90_10(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    stable, canary = backends("stable"), backends("canary")
    gateway.put_routes(
        [route(backends=[_b("s1", "stable", 90, stable), _b("c1", "canary", 10, canary)])]
    ).raise_for_status()
    # 10,000 draws are checked on the pure chooser (tests/unit/gateway); here the real path, end to end
    outcomes = await load(gateway.listen, "/shop-dev/payment/", total=3000, concurrency=32)
    assert all(o.status == 200 for o in outcomes), Counter(o.error or o.status for o in outcomes)
    versions = Counter(o.version for o in outcomes)
    assert set(versions) == {"s1", "c1"}
    # binomial(3000, 0.1): sd = 16.4; 5 sd either side
    assert 218 <= versions["c1"] <= 382, versions
    assert stable.count() == versions["s1"]
    assert canary.count() == versions["c1"]


async def test_weights_endpoint_shifts_traffic(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    stable, canary = backends("stable"), backends("canary")
    gateway.put_routes(
        [route(backends=[_b("s1", "stable", 100, stable), _b("c1", "canary", 0, canary)])]
    ).raise_for_status()
    before = Counter(o.version for o in await load(gateway.listen, "/shop-dev/payment/", total=300))
    assert before == {"s1": 300}
    resp = gateway.admin_post("/routes/shop-dev/payment/weights", {"stable": 0, "canary": 100})
    assert resp.status_code == 200, resp.text
    after = Counter(o.version for o in await load(gateway.listen, "/shop-dev/payment/", total=300))
    assert after == {"c1": 300}
    doc = gateway.admin_get("/routes").json()["routes"][0]
    assert {b["track"]: b["weight"] for b in doc["backends"]} == {"stable": 0, "canary": 100}
    bad = gateway.admin_post("/routes/shop-dev/payment/weights", {"blue": 5})
    assert bad.status_code == 400
    assert "blue" in bad.json()["error"]["message"]
    assert gateway.admin_post("/routes/nope/weights", {"stable": 5}).status_code == 404


async def test_header_and_cookie_force_the_canary(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    stable, canary = backends("stable"), backends("canary")
    rules = [
        {"header": "x-juanie-track", "value": "canary", "track": "canary"},
        {"cookie": "juanie-track", "value": "canary", "track": "canary"},
    ]
    gateway.put_routes(
        [route(backends=[_b("s1", "stable", 100, stable), _b("c1", "canary", 0, canary)], match=rules)]
    ).raise_for_status()
    by_header = await load(gateway.listen, "/shop-dev/payment/", total=200, headers={"X-Juanie-Track": "canary"})
    assert Counter(o.version for o in by_header) == {"c1": 200}
    cookie = {"Cookie": "session=abc; juanie-track=canary; theme=dark"}
    by_cookie = await load(gateway.listen, "/shop-dev/payment/", total=200, headers=cookie)
    assert Counter(o.version for o in by_cookie) == {"c1": 200}
    other = await load(gateway.listen, "/shop-dev/payment/", total=200, headers={"Cookie": "juanie-track=stable"})
    assert Counter(o.version for o in other) == {"s1": 200}


async def test_connection_refused_is_retried_on_another_endpoint(
    gateway: GatewayProc, backends: Callable[..., Backend]
) -> None:
    live = backends("live")
    dead = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    gateway.put_routes([route(backends=[_b("v1", "stable", 100, endpoints=[*dead, live.endpoint])])]).raise_for_status()
    outcomes = await load(gateway.listen, "/shop-dev/payment/", total=300, concurrency=4)
    assert Counter(o.status for o in outcomes) == {200: 300}
    assert live.count() == 300
    metrics = httpx.get(f"{gateway.admin_url}/metrics", timeout=10).text
    refused = [
        line for line in metrics.splitlines()
        if line.startswith("juanie_gateway_upstream_errors_total") and 'reason="connect"' in line
    ]  # fmt: skip
    assert refused and float(refused[0].rsplit(" ", 1)[1]) > 0


async def test_all_endpoints_refusing_gives_502_and_no_endpoints_gives_503(gateway: GatewayProc) -> None:
    dead = [f"127.0.0.1:{free_port()}"]
    gateway.put_routes(
        [
            route("shop-dev/payment", [_b("v1", "stable", 100, endpoints=dead)]),
            route("shop-dev/user", [_b("u1", "stable", 100, endpoints=[])]),
        ]
    ).raise_for_status()
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        refused = client.get("/shop-dev/payment/")
        assert refused.status_code == 502
        assert refused.json()["route"] == "shop-dev/payment"
        assert client.get("/shop-dev/user/").status_code == 503


def test_no_retry_once_the_request_was_written(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    closer = backends("closer", mode="read-then-close")
    spare = backends("spare")
    gateway.put_routes(
        [route(backends=[_b("v1", "stable", 100, endpoints=[closer.endpoint, spare.endpoint])])]
    ).raise_for_status()
    # least-in-flight with round-robin ties: with nothing in flight, consecutive requests alternate endpoints
    statuses = []
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        for _ in range(4):
            statuses.append(client.post("/shop-dev/payment/pay", content=b"charge 10 EUR").status_code)
    assert sorted(statuses) == [200, 200, 502, 502]
    assert closer.count() == 2  # each failed request reached the backend exactly once
    assert spare.count() == 2  # and was not retried on the healthy endpoint


def test_slow_backend_gives_504_after_the_route_timeout(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    slow = backends("slow")
    gateway.put_routes([route(backends=[_b("v1", "stable", 100, slow)], timeout_seconds=0.5)]).raise_for_status()
    with httpx.Client(base_url=gateway.url, timeout=20) as client:
        t0 = time.monotonic()
        resp = client.get("/shop-dev/payment/slow?ms=5000")
        elapsed = time.monotonic() - t0
        assert resp.status_code == 504
        assert "0.5s" in resp.json()["error"]
        assert 0.45 <= elapsed < 4.0
        assert client.get("/shop-dev/payment/slow?ms=10").status_code == 200


async def test_fault_injection_abort_and_delay(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    b = backends("b")
    gateway.put_routes([route(backends=[_b("v1", "stable", 100, b)])]).raise_for_status()
    resp = gateway.admin_post("/routes/shop-dev/payment/fault", {"abort_percent": 100, "abort_status": 500})
    assert resp.status_code == 200, resp.text
    aborted = await load(gateway.listen, "/shop-dev/payment/", total=100)
    assert Counter(o.status for o in aborted) == {500: 100}
    assert b.count() == 0  # aborted requests never reach the backend

    gateway.admin_post("/routes/shop-dev/payment/fault", {"abort_percent": 30}).raise_for_status()
    mixed = Counter(o.status for o in await load(gateway.listen, "/shop-dev/payment/", total=2000))
    assert set(mixed) == {200, 503}
    assert 450 <= mixed[503] <= 750, mixed  # binomial(2000, 0.3): sd = 20.5

    gateway.admin_post("/routes/shop-dev/payment/fault", {"delay_ms": 300}).raise_for_status()
    delayed = await load(gateway.listen, "/shop-dev/payment/", total=8, concurrency=8)
    assert all(o.status == 200 and o.seconds >= 0.29 for o in delayed), delayed

    gateway.admin_post("/routes/shop-dev/payment/fault", {}).raise_for_status()
    bad = gateway.admin_post("/routes/shop-dev/payment/fault", {"abort_percent": 150})
    assert bad.status_code == 400
    assert "abort_percent" in bad.json()["error"]["message"]
