"""Routing through a real gateway process to real backend processes: host, prefix, headers, bodies, streams."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import httpx
import pytest

from tests.integration.gateway.gateway_helpers import Backend, GatewayProc, route, wait_until

# Each test runs twice: with the gateway's C fast path for plain heads, and with httptools for every head.
pytestmark = pytest.mark.parametrize("gateway", ["fast path", "httptools"], indirect=True)


def _backend(version: str, b: Backend, weight: int = 100, track: str = "stable") -> dict[str, object]:
    return {"version": version, "track": track, "weight": weight, "endpoints": [b.endpoint]}


def test_routes_by_host_and_by_path_prefix_which_is_stripped(
    gateway: GatewayProc, backends: Callable[..., Backend]
) -> None:
    assert httpx.get(f"{gateway.admin_url}/healthz", timeout=5).json()["fast_path"] is gateway.fast_path
    pay, user = backends("pay"), backends("user")
    resp = gateway.put_routes(
        [
            route("shop-dev/payment", [_backend("p1", pay)]),
            route("shop-dev/user", [_backend("u1", user)]),
        ]
    )
    assert resp.status_code == 200, resp.text
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        by_host = client.get("/api/pay?x=1", headers={"host": "payment.shop-dev.localhost:8480"})
        assert by_host.status_code == 200
        assert by_host.json()["name"] == "pay"
        assert by_host.json()["path"] == "/api/pay?x=1"
        assert by_host.headers["x-juanie-version"] == "p1"

        by_path = client.get("/shop-dev/user/profile/7?y=2")
        assert by_path.json()["name"] == "user"
        assert by_path.json()["path"] == "/profile/7?y=2"
        assert client.get("/shop-dev/user").json()["path"] == "/"
        assert client.get("/shop-dev/user?q=1").json()["path"] == "/?q=1"

        missing = client.get("/shop-dev/userx/profile")
        assert missing.status_code == 404
        assert missing.json() == {"error": "no route for host/path"}
        assert client.get("/", headers={"host": "nothing.localhost"}).status_code == 404


def test_longest_prefix_wins(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    short, long = backends("short"), backends("long")
    gateway.put_routes(
        [
            route("a/api", [_backend("s", short)], hosts=[], path_prefix="/api"),
            route("a/api-v2", [_backend("l", long)], hosts=[], path_prefix="/api/v2"),
        ]
    ).raise_for_status()
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        assert client.get("/api/v2/items").json()["name"] == "long"
        assert client.get("/api/v2/items").json()["path"] == "/items"
        assert client.get("/api/v1/items").json()["name"] == "short"
        assert client.get("/api/v1/items").json()["path"] == "/v1/items"


def test_forwarding_headers_and_trace_id(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    b = backends("b")
    gateway.put_routes([route("shop-dev/payment", [_backend("v1", b)])]).raise_for_status()
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        seen = client.get("/shop-dev/payment/", headers={"x-forwarded-for": "10.0.0.9"}).json()["headers"]
        assert seen["x-forwarded-for"] == "10.0.0.9, 127.0.0.1"
        assert len(seen["x-trace-id"]) == 32
        other = client.get("/shop-dev/payment/").json()["headers"]["x-trace-id"]
        assert other != seen["x-trace-id"]
        kept = client.get("/shop-dev/payment/", headers={"x-trace-id": "abc123"}).json()["headers"]
        assert kept["x-trace-id"] == "abc123"
        assert "connection" not in {k for k in kept if kept[k].lower() == "close"}


def test_request_bodies_content_length_and_chunked(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    b = backends("b")
    gateway.put_routes([route("shop-dev/payment", [_backend("v1", b)])]).raise_for_status()
    payload = bytes(range(256)) * 4096  # 1 MiB
    with httpx.Client(base_url=gateway.url, timeout=20) as client:
        echoed = client.post("/shop-dev/payment/echo", content=payload)
        assert echoed.status_code == 200
        assert echoed.content == payload

        def chunks():
            for i in range(0, len(payload), 65536):
                yield payload[i : i + 65536]

        streamed = client.post("/shop-dev/payment/echo", content=chunks())
        assert streamed.content == payload
        head = client.head("/shop-dev/payment/anything")
        assert head.status_code == 200
        assert client.get("/shop-dev/payment/status/503").status_code == 503


def test_sse_stream_passes_through_unbuffered(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    b = backends("b")
    gateway.put_routes([route("shop-dev/payment", [_backend("v1", b)])]).raise_for_status()
    arrivals: list[tuple[float, str]] = []
    with (
        httpx.Client(base_url=gateway.url, timeout=20) as client,
        client.stream("GET", "/shop-dev/payment/sse?n=3&ms=700") as resp,
    ):
        assert resp.headers["content-type"] == "text/event-stream"
        for line in resp.iter_lines():
            if line.startswith("data:"):
                arrivals.append((time.monotonic(), line))
    assert [line for _, line in arrivals] == ["data: 0", "data: 1", "data: 2"]
    # a buffering proxy would deliver all events together at the end; here they arrive as sent
    assert arrivals[2][0] - arrivals[0][0] > 0.8  # sent 1.4 s apart


def test_keep_alive_and_pipelining_on_client_side(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    b = backends("b")
    gateway.put_routes([route("shop-dev/payment", [_backend("v1", b)])]).raise_for_status()
    host, port = gateway.listen.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        request = b"GET /shop-dev/payment/p%d HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(request % 1 + request % 2 + request % 3)
        data = b""

        def three_responses() -> bool:
            nonlocal data
            data += sock.recv(65536)
            return data.count(b"HTTP/1.1 200") == 3 and data.endswith(b"}")

        wait_until(three_responses, timeout=15, interval=0)
    assert data.index(b'"/p1') < data.index(b'"/p2') < data.index(b'"/p3')


def test_malformed_request_gets_400(gateway: GatewayProc) -> None:
    host, port = gateway.listen.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        data = sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 400")


def test_large_response_to_a_slow_reader_arrives_intact(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    b = backends("b")
    gateway.put_routes([route("shop-dev/payment", [_backend("v1", b)])]).raise_for_status()
    payload = bytes(range(256)) * (32 * 1024)  # 8 MiB: far above socket buffers, so flow control engages
    received = bytearray()
    with (
        httpx.Client(base_url=gateway.url, timeout=30) as client,
        client.stream("POST", "/shop-dev/payment/echo", content=payload) as resp,
    ):
        for i, piece in enumerate(resp.iter_raw(65536)):
            received += piece
            if i < 20:
                time.sleep(0.01)  # a slow reader: the gateway must pause the backend, not buffer without bound
    assert bytes(received) == payload
    with httpx.Client(base_url=gateway.url, timeout=10) as client:  # the pooled connection is usable again
        assert client.get("/shop-dev/payment/").status_code == 200


def test_upgrade_and_absolute_form_requests(gateway: GatewayProc, backends: Callable[..., Backend]) -> None:
    b = backends("b")
    gateway.put_routes([route("shop-dev/payment", [_backend("v1", b)])]).raise_for_status()
    host, port = gateway.listen.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"GET /shop-dev/payment/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):  # the gateway answers, then closes: upgrades are not proxied
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert b'"upgrade"' not in data.split(b"\r\n\r\n", 1)[1]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"GET http://payment.shop-dev.localhost/abs?q=1 HTTP/1.1\r\nHost: ignored\r\nConnection: close\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert b'"path": "/abs?q=1"' in data


def test_garbage_after_a_request_does_not_corrupt_its_response(
    gateway: GatewayProc, backends: Callable[..., Backend]
) -> None:
    b = backends("b")
    gateway.put_routes([route("shop-dev/payment", [_backend("v1", b)])]).raise_for_status()
    host, port = gateway.listen.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /shop-dev/payment/slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):  # the gateway answers the valid request, then closes
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"400" not in head
    assert json.loads(body)["path"] == "/slow?ms=300"
