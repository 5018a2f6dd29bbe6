"""A gateway of several processes behaves as one: every process serves, changes reach all, numbers add up.

Real gateway processes (the primary and its workers, `--workers 3`) and real backends; connections are opened
with plain sockets and kept open so that the test knows which process holds each one (psutil).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration.gateway.gateway_helpers import Backend, GatewayProc, route, wait_until

WORKERS = 3


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[GatewayProc]:
    gw = GatewayProc(tmp_path / "gateway-state", extra_args=["--workers", str(WORKERS)])
    gw.start()
    wait_until(lambda: len(_pids(gw)) == WORKERS, timeout=30)
    yield gw
    gw.stop()


def _pids(gw: GatewayProc) -> list[int]:
    return list(httpx.get(f"{gw.admin_url}/healthz", timeout=5).json()["workers"])


def _backend(version: str, member: Backend, weight: int, track: str = "stable") -> dict:
    return {"version": version, "track": track, "weight": weight, "endpoints": [member.endpoint]}


def _ask(sock: socket.socket, path: str = "/shop-dev/payment/") -> tuple[int, str]:
    """One request on an open keep-alive connection: (status, the version that answered)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the gateway closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the gateway closed the connection mid-body"
        body += chunk
    return int(lines[0].split(" ")[1]), headers.get("x-juanie-version", "")


def _open(gw: GatewayProc, count: int) -> list[socket.socket]:
    host, port = gw.listen.rsplit(":", 1)
    return [socket.create_connection((host, int(port)), timeout=10) for _ in range(count)]


def _holders(gw: GatewayProc, pids: list[int]) -> dict[int, int]:
    """How many established client connections each gateway process holds on the listening port."""
    port = int(gw.listen.rsplit(":", 1)[1])
    held = {}
    for pid in pids:
        conns = psutil.Process(pid).net_connections(kind="tcp")
        held[pid] = sum(1 for c in conns if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED)
    return held


def test_every_process_serves_and_signals_and_metrics_add_up(
    fleet: GatewayProc, backends: Callable[..., Backend]
) -> None:
    b = backends("b")
    fleet.put_routes([route(backends=[_backend("v1", b, 100)], hosts=["test"])]).raise_for_status()
    socks = _open(fleet, 60)
    try:
        sent = 0
        for _ in range(5):
            for sock in socks:
                assert _ask(sock) == (200, "v1")
                sent += 1
        held = _holders(fleet, _pids(fleet))
        assert sum(held.values()) == len(socks), held
        assert sum(1 for n in held.values() if n) >= 2, f"only one process took connections: {held}"
    finally:
        for sock in socks:
            sock.close()
    signals = fleet.admin_get("/signals", env="shop-dev", service="payment", window=60).json()["versions"]
    assert signals["v1"]["requests"] == sent == b.count()
    metrics = httpx.get(f"{fleet.admin_url}/metrics", timeout=10).text
    line = next(x for x in metrics.splitlines() if x.startswith("juanie_gateway_requests_total{") and 'code="200"' in x)
    assert float(line.rsplit(" ", 1)[1]) == sent


def test_a_weight_change_is_served_by_every_process_once_acknowledged(
    fleet: GatewayProc, backends: Callable[..., Backend]
) -> None:
    blue, green = backends("blue"), backends("green")
    fleet.put_routes(
        [route(backends=[_backend("blue", blue, 100), _backend("green", green, 0, "canary")], hosts=["test"])]
    ).raise_for_status()
    socks = _open(fleet, 45)
    try:
        assert {_ask(s) for s in socks} == {(200, "blue")}
        assert sum(1 for n in _holders(fleet, _pids(fleet)).values() if n) >= 2
        response = fleet.admin_post("/routes/shop-dev/payment/weights", {"stable": 0, "canary": 100})
        assert response.status_code == 200, response.text
        # the same connections, so the same processes that served blue a moment ago: none may still do so
        assert {_ask(s) for s in socks} == {(200, "green")}
    finally:
        for sock in socks:
            sock.close()


def test_a_killed_worker_is_replaced_and_serves_the_current_table(
    fleet: GatewayProc, backends: Callable[..., Backend]
) -> None:
    b1, b2 = backends("one"), backends("two")
    fleet.put_routes([route(backends=[_backend("one", b1, 100)], hosts=["test"])]).raise_for_status()
    primary, *workers = _pids(fleet)
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    # while it is down the table changes: the replacement must start with the new one
    fleet.put_routes([route(backends=[_backend("two", b2, 100)], hosts=["test"])]).raise_for_status()
    replaced = wait_until(lambda: (p := _pids(fleet)) and victim not in p and len(p) == WORKERS and p, timeout=20)
    assert replaced[0] == primary
    socks = _open(fleet, 45)
    try:
        assert {_ask(s) for s in socks} == {(200, "two")}
        held = _holders(fleet, replaced)
        assert sum(held.values()) == len(socks)
    finally:
        for sock in socks:
            sock.close()


def test_workers_leave_with_a_killed_primary_and_free_the_port(
    fleet: GatewayProc, backends: Callable[..., Backend], tmp_path: Path
) -> None:
    b = backends("b")
    fleet.put_routes([route(backends=[_backend("v1", b, 100)], hosts=["test"])]).raise_for_status()
    primary, *workers = _pids(fleet)
    os.kill(primary, signal.SIGKILL)
    wait_until(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in workers),
               timeout=20)  # fmt: skip
    # nothing holds the port any more: a new gateway can take the same address and serves the saved table
    listen = fleet.listen
    fleet.stop()
    again = GatewayProc(fleet.state_dir, extra_args=["--workers", "2"])
    started = time.monotonic()
    again.start(listen=listen)
    try:
        assert time.monotonic() - started < 20
        with _open(again, 1)[0] as sock:
            assert _ask(sock) == (200, "v1")
    finally:
        again.stop()


def test_workers_must_be_a_positive_number_or_auto(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "juanie.engines.local.gateway", "--state", str(tmp_path), "--workers", "zero"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "workers: expected a positive number or 'auto', got 'zero'" in result.stderr
