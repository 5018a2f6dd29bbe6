"""Zero downtime: reloads and rolling updates under steady load lose no request; the gateway outlives its parent."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.integration.gateway.gateway_helpers import Backend, GatewayProc, kill_group, load, route, wait_until

RATE = 250  # requests per second, above the 200/s of the acceptance criterion


def _backend(version: str, members: list[Backend], weight: int | None = None) -> dict:
    return {
        "version": version,
        "track": "stable",
        "weight": len(members) if weight is None else weight,
        "endpoints": [m.endpoint for m in members],
    }


def _assert_no_failures(outcomes: list, duration: float) -> None:
    failures = [o for o in outcomes if o.status != 200]
    assert failures == [], Counter(o.error or o.status for o in failures)
    assert len(outcomes) == int(RATE * duration)


async def test_route_reloads_under_load_drop_nothing(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    blue, green = backends("blue"), backends("green")
    tables = [[route(backends=[_backend("blue", [blue])])], [route(backends=[_backend("green", [green])])]]
    gateway.put_routes(tables[0]).raise_for_status()
    stop = threading.Event()
    reloads = 0

    def reloader() -> None:
        nonlocal reloads
        with httpx.Client(timeout=10, headers=gateway.auth) as client:
            while not stop.is_set():
                reloads += 1
                resp = client.put(f"{gateway.admin_url}/routes", json={"routes": tables[reloads % 2]})
                resp.raise_for_status()
                stop.wait(0.05)

    thread = threading.Thread(target=reloader)
    thread.start()
    try:
        outcomes = await load(gateway.listen, "/shop-dev/payment/slow?ms=20", rate=RATE, duration=4, concurrency=32)
    finally:
        stop.set()
        thread.join(timeout=20)
    _assert_no_failures(outcomes, 4)
    assert reloads >= 10
    assert {o.version for o in outcomes} == {"blue", "green"}


def _rolling_update(gateway: GatewayProc, old: list[Backend], start: Callable[..., Backend]) -> list[Backend]:
    """What the local engine does: start a new replica, route to it, unroute an old one, drain it, stop it."""
    new: list[Backend] = []
    old = list(old)
    with httpx.Client(timeout=10, headers=gateway.auth) as client:
        while old:
            new.append(start(f"v2-{len(new)}"))
            retiring = old.pop(0)
            backends = [_backend("v2", new)] + ([_backend("v1", old)] if old else [])
            client.put(f"{gateway.admin_url}/routes", json={"routes": [route(backends=backends)]}).raise_for_status()
            wait_until(
                lambda r=retiring: client.get(
                    f"{gateway.admin_url}/inflight", params={"endpoint": r.endpoint}
                ).json()["inflight"] == 0,
                timeout=30,
            )  # fmt: skip
            retiring.proc.send_signal(signal.SIGTERM)
            retiring.proc.wait(timeout=10)
            wait_until(lambda n=new[-1]: n.count() >= 20, timeout=30)  # the new replica carries traffic
    return new


async def test_rolling_update_of_three_replicas_under_load_loses_no_request(
    gateway: GatewayProc, backends: Callable[..., Backend]
) -> None:
    old = [backends(f"v1-{i}") for i in range(3)]
    gateway.put_routes([route(backends=[_backend("v1", old)])]).raise_for_status()
    duration = 7.0
    loop = asyncio.get_running_loop()
    timings: dict[str, float] = {"start": loop.time()}

    async def traffic() -> list:
        outcomes = await load(
            gateway.listen, "/shop-dev/payment/slow?ms=10", rate=RATE, duration=duration, concurrency=32
        )
        timings["traffic_end"] = loop.time()
        return outcomes

    running = asyncio.ensure_future(traffic())
    await asyncio.sleep(0.5)
    new = await asyncio.to_thread(_rolling_update, gateway, old, backends)
    timings["update_end"] = loop.time()
    outcomes = await running
    elapsed = timings["traffic_end"] - timings["start"]
    assert timings["update_end"] < timings["traffic_end"], "the whole update must happen under load"
    _assert_no_failures(outcomes, duration)
    assert len(outcomes) / elapsed >= 200, f"load generator reached only {len(outcomes) / elapsed:.0f} req/s"
    versions = Counter(o.version for o in outcomes)
    assert versions["v1"] > 0 and versions["v2"] > 0
    assert all(b.proc.poll() is not None for b in old)
    assert sum(b.count() for b in new) == versions["v2"]
    tail = await load(gateway.listen, "/shop-dev/payment/", total=50)
    assert {o.version for o in tail} == {"v2"}


@pytest.fixture
def orphaned_gateway(tmp_path: Path):
    """A gateway started by a parent process (like the Juanie server) that is then killed with -9."""
    state = tmp_path / "gw"
    code = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-m', 'juanie.engines.local.gateway', '--listen', '127.0.0.1:0',"
        f" '--admin', '127.0.0.1:0', '--state', {str(state)!r}, '--log-level', 'WARNING'],"
        " start_new_session=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    info = wait_until(lambda: (state / "gateway.json").exists() and json.loads((state / "gateway.json").read_text()))
    gw = GatewayProc(state, listen=info["listen"], admin=info["admin"])
    gw.token = (state / "admin-token").read_text().strip()
    yield gw, parent, int(info["pid"])
    kill_group(parent)
    try:
        os.killpg(int(info["pid"]), signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_gateway_keeps_serving_when_the_process_that_started_it_is_killed(
    orphaned_gateway: tuple[GatewayProc, subprocess.Popen[bytes], int], backends: Callable[..., Backend]
) -> None:
    gw, parent, gateway_pid = orphaned_gateway
    b = backends("b")
    wait_until(lambda: httpx.get(f"{gw.admin_url}/healthz", timeout=2).status_code == 200)
    gw.put_routes([route(backends=[_backend("v1", [b])])]).raise_for_status()
    kill_group(parent)  # SIGKILL the parent's whole group; the gateway has its own session
    assert parent.returncode == -signal.SIGKILL
    os.kill(gateway_pid, 0)  # still alive
    for _ in range(20):
        assert httpx.get(f"{gw.url}/shop-dev/payment/", timeout=10).status_code == 200


def test_sigterm_lets_inflight_requests_finish(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    b = backends("b")
    gateway.put_routes([route(backends=[_backend("v1", [b])])]).raise_for_status()
    results: list[int] = []
    thread = threading.Thread(
        target=lambda: results.append(httpx.get(f"{gateway.url}/shop-dev/payment/slow?ms=1500", timeout=20).status_code)
    )
    thread.start()
    wait_until(lambda: gateway.admin_get("/inflight", endpoint=b.endpoint).json()["inflight"] == 1)
    assert gateway.proc is not None
    gateway.proc.send_signal(signal.SIGTERM)
    thread.join(timeout=20)
    assert results == [200]
    assert gateway.proc.wait(timeout=20) == 0
    assert not (gateway.state_dir / "gateway.pid").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{gateway.url}/shop-dev/payment/", timeout=5)
