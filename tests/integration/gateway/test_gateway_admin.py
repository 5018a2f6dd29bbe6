"""The admin API of a real gateway process: auth, validation, persistence, draining, metrics and signals."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
from collections.abc import Callable

import httpx

from tests.integration.gateway.gateway_helpers import Backend, GatewayProc, load, route, wait_until


def _b(version: str, backend: Backend, weight: int = 100, track: str = "stable") -> dict:
    return {"version": version, "track": track, "weight": weight, "endpoints": [backend.endpoint]}


def test_admin_requires_the_token_except_health_and_metrics(gateway: GatewayProc) -> None:
    token_file = gateway.state_dir / "admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert httpx.get(f"{gateway.admin_url}/healthz").status_code == 200
    assert httpx.get(f"{gateway.admin_url}/metrics").status_code == 200
    for method, path in [("GET", "/routes"), ("PUT", "/routes"), ("GET", "/inflight?endpoint=a:1"),
                         ("GET", "/signals?env=a&service=b"), ("POST", "/routes/x/weights")]:  # fmt: skip
        assert httpx.request(method, f"{gateway.admin_url}{path}").status_code == 401, path
        wrong = httpx.request(method, f"{gateway.admin_url}{path}", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert gateway.token not in wrong.text
    assert gateway.admin_get("/routes").json() == {"routes": []}


def test_invalid_routes_are_rejected_whole_with_a_reason(
    gateway: GatewayProc, backends: Callable[..., Backend]
) -> None:
    b = backends("b")
    gateway.put_routes([route(backends=[_b("v1", b)])]).raise_for_status()
    cases = {
        "routes[1].backends[0].endpoints": route(
            "shop-dev/user", [{"version": "u", "weight": 1, "endpoints": ["nohost"]}]
        ),
        "routes[1].backends[0].weight": route("shop-dev/user", [{"version": "u", "weight": -1, "endpoints": []}]),
        "path": route("shop-dev/user", [], path_prefix="no-slash"),
        "exactly one of": route("shop-dev/user", [], match=[{"value": "x", "track": "canary"}]),
    }
    for expected, bad in cases.items():
        resp = gateway.put_routes([route(backends=[_b("v1", b)]), bad])
        assert resp.status_code == 400, resp.text
        assert expected in resp.json()["error"]["message"]
    dup = gateway.put_routes([route(backends=[_b("v1", b)]), route(backends=[_b("v1", b)])])
    assert dup.status_code == 400 and "twice" in dup.json()["error"]["message"]
    not_json = httpx.put(f"{gateway.admin_url}/routes", content=b"{nope", headers=gateway.auth)
    assert not_json.status_code == 400 and "JSON" in not_json.json()["error"]["message"]
    # the table in force is the last valid one
    assert [r["name"] for r in gateway.admin_get("/routes").json()["routes"]] == ["shop-dev/payment"]
    assert httpx.get(f"{gateway.url}/shop-dev/payment/").status_code == 200


def test_routes_survive_a_gateway_restart(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    b = backends("b")
    doc = route(backends=[_b("v7", b)], match=[{"header": "x-juanie-track", "value": "canary", "track": "canary"}])
    gateway.put_routes([doc]).raise_for_status()
    gateway.admin_post("/routes/shop-dev/payment/fault", {"delay_ms": 1}).raise_for_status()
    saved = json.loads((gateway.state_dir / "routes.json").read_text())
    token = gateway.token
    pid = int((gateway.state_dir / "gateway.pid").read_text())
    assert pid == gateway.proc.pid if gateway.proc else False
    gateway.stop()  # SIGKILL: nothing gets a chance to save anything at exit
    gateway.start()
    assert gateway.token == token
    assert int((gateway.state_dir / "gateway.pid").read_text()) != pid
    assert gateway.admin_get("/routes").json() == saved
    assert saved["routes"][0]["fault"]["delay_ms"] == 1
    resp = httpx.get(f"{gateway.url}/shop-dev/payment/", timeout=10)
    assert resp.status_code == 200 and resp.headers["x-juanie-version"] == "v7"
    leftovers = [p for p in os.listdir(gateway.state_dir) if p.endswith(".tmp")]
    assert leftovers == []


def test_inflight_counts_requests_until_they_finish(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    old, new = backends("old"), backends("new")
    gateway.put_routes([route(backends=[_b("v1", old)])]).raise_for_status()
    results: list[int] = []

    def slow_request() -> None:
        results.append(httpx.get(f"{gateway.url}/shop-dev/payment/slow?ms=1500", timeout=20).status_code)

    thread = threading.Thread(target=slow_request)
    thread.start()
    try:
        wait_until(lambda: gateway.admin_get("/inflight", endpoint=old.endpoint).json()["inflight"] == 1)
        # the engine removes the endpoint first: new requests go to the new one, the old request continues
        gateway.put_routes([route(backends=[_b("v2", new)])]).raise_for_status()
        assert httpx.get(f"{gateway.url}/shop-dev/payment/", timeout=10).headers["x-juanie-version"] == "v2"
        assert gateway.admin_get("/inflight", endpoint=old.endpoint).json() == {
            "endpoint": old.endpoint,
            "inflight": 1,
        }
        wait_until(lambda: gateway.admin_get("/inflight", endpoint=old.endpoint).json()["inflight"] == 0)
    finally:
        thread.join(timeout=20)
    assert results == [200]
    assert gateway.admin_get("/inflight").status_code == 400


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_metrics_and_signals_match_the_traffic_sent(
    gateway: GatewayProc, backends: Callable[..., Backend]
) -> None:
    stable, canary = backends("stable"), backends("canary")
    rules = [{"header": "x-juanie-track", "value": "canary", "track": "canary"}]
    gateway.put_routes(
        [route(backends=[_b("s1", stable, 100), _b("c1", canary, 0, "canary")], match=rules)]
    ).raise_for_status()
    ok = await load(gateway.listen, "/shop-dev/payment/", total=120)
    fails = await load(gateway.listen, "/shop-dev/payment/status/500", total=30)
    canary_ok = await load(gateway.listen, "/shop-dev/payment/slow?ms=120", total=20, concurrency=10,
                           headers={"x-juanie-track": "canary"})  # fmt: skip
    assert {o.status for o in ok} == {200} and {o.status for o in fails} == {500}
    assert {o.status for o in canary_ok} == {200}
    await asyncio.sleep(0)

    text = httpx.get(f"{gateway.admin_url}/metrics", timeout=10).text
    base = {"env": "shop-dev", "service": "payment"}
    assert _metric(text, "juanie_gateway_requests_total", version="s1", code="200", **base) == 120
    assert _metric(text, "juanie_gateway_requests_total", version="s1", code="500", **base) == 30
    assert _metric(text, "juanie_gateway_requests_total", version="c1", code="200", **base) == 20
    assert _metric(text, "juanie_gateway_request_duration_seconds_count", version="s1", **base) == 150
    assert _metric(text, "juanie_gateway_request_duration_seconds_bucket", version="c1", le="0.1", **base) == 0
    assert _metric(text, "juanie_gateway_request_duration_seconds_bucket", version="c1", le="+Inf", **base) == 20
    assert "juanie_gateway_inflight_requests" in text

    signals = gateway.admin_get("/signals", env="shop-dev", service="payment", window=60).json()["versions"]
    assert set(signals) == {"s1", "c1"}
    s1, c1 = signals["s1"], signals["c1"]
    assert (s1["requests"], s1["errors"]) == (150, 30)
    assert (c1["requests"], c1["errors"]) == (20, 0)
    assert abs(s1["rate"] - 150 / 60) < 1e-9
    assert 0.12 <= c1["latency_p50"] <= 0.5 and c1["latency_p50"] <= c1["latency_p95"] <= c1["latency_p99"]
    assert s1["latency_p50"] < c1["latency_p50"]
    assert c1["latency_buckets"][-1][1] == 20
    assert all(a[1] <= b[1] for a, b in zip(c1["latency_buckets"], c1["latency_buckets"][1:], strict=False))
    empty = gateway.admin_get("/signals", env="shop-dev", service="nothing", window=60).json()
    assert empty["versions"] == {}
    assert gateway.admin_get("/signals", env="shop-dev", service="payment", window="x").status_code == 400
