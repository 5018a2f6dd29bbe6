"""What one client connection may cost the local engine's gateway (gateway/limits.py), against a real gateway.

Each attack runs on both of the gateway's parsing paths: the C fast path and httptools alone.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.gateway.gateway_helpers import Backend, GatewayProc, route, start_backend
from tests.security.limits_support import MiB, drain, parse_response, peak_growth
from tests.support import wait_until

PATHS = ["fast path", "httptools"]


@pytest.fixture
def start_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., GatewayProc]]:
    """Factory: a one-process gateway (so its memory is one process's), `JUANIE_GATEWAY_*` variables set."""
    started: list[GatewayProc] = []

    def start(path: str, **env: str) -> GatewayProc:
        for name, value in env.items():
            monkeypatch.setenv(name, value)  # the gateway takes its limits from its environment
        gateway = GatewayProc(tmp_path / f"gateway-{len(started)}", fast_path=path == "fast path",
                              extra_args=["--workers", "1"])  # fmt: skip
        started.append(gateway)
        gateway.start()
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def backend() -> Iterator[Backend]:
    started = start_backend("v1")
    yield started
    started.kill()


def _connect(gateway: GatewayProc) -> socket.socket:
    host, port = gateway.listen.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def _answer_then_close(sock: socket.socket, timeout: float = 10) -> bytes:
    received = bytearray()
    wait_until(lambda: drain(sock, received), timeout=timeout, message="the gateway to close the connection")
    return bytes(received)


@pytest.mark.parametrize("path", PATHS)
def test_a_100_kib_request_head_is_answered_431_and_closed(start_gateway: Callable[..., GatewayProc],
                                                          path: str) -> None:  # fmt: skip
    gateway = start_gateway(path)
    head = b"GET / HTTP/1.1\r\nHost: shop.localhost\r\nCookie: " + b"a" * (100 * 1024) + b"\r\n\r\n"
    with _connect(gateway) as sock:  # in one write: one read can hold all of it
        sock.sendall(head)
        assert _answer_then_close(sock).startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    with _connect(gateway) as sock:  # a field at a time, and never ending: counted across reads
        sock.sendall(b"GET / HTTP/1.1\r\nHost: shop.localhost\r\n")
        received = bytearray()

        def refused() -> bool:
            if drain(sock, received) or received:
                return True
            try:
                sock.sendall(b"X-Filler: " + b"b" * 4000 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                return drain(sock, received) or True
            return False

        wait_until(refused, timeout=10, interval=0.01, message="the gateway to refuse the growing head")
        assert bytes(received).startswith(b"HTTP/1.1 431 ")


@pytest.mark.parametrize("path", PATHS)
def test_a_slowloris_client_is_closed_within_the_header_timeout(start_gateway: Callable[..., GatewayProc],
                                                                path: str) -> None:  # fmt: skip
    gateway = start_gateway(path, JUANIE_GATEWAY_HEADER_TIMEOUT_SECONDS="1")
    with _connect(gateway) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: shop.localhost\r\n")
        received = bytearray()

        def one_more_byte_then_closed() -> bool:
            if drain(sock, received):
                return True
            try:
                sock.sendall(b"x")  # one byte of a header that never ends, per interval
            except (BrokenPipeError, ConnectionResetError):
                drain(sock, received)
                return True
            return False

        wait_until(one_more_byte_then_closed, timeout=10, interval=0.2, message="the slow client to be closed")
        waited = time.monotonic() - started
    assert bytes(received).startswith(b"HTTP/1.1 408 "), bytes(received[:200])
    assert 0.9 <= waited <= 5, f"closed after {waited:.1f}s; the header timeout is 1s, checked once a second"


@pytest.mark.parametrize("path", PATHS)
def test_an_idle_kept_alive_connection_is_closed_after_the_idle_timeout(start_gateway: Callable[..., GatewayProc],
                                                                        path: str) -> None:  # fmt: skip
    gateway = start_gateway(path, JUANIE_GATEWAY_IDLE_TIMEOUT_SECONDS="1")
    with _connect(gateway) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: nowhere.localhost\r\n\r\n")
        received = bytearray()
        wait_until(lambda: drain(sock, received) or parse_response(bytes(received)), message="an answer")
        answered = time.monotonic()
        status, headers, _ = parse_response(bytes(received)) or (0, {}, b"")
        assert status == 404 and headers.get("connection") != "close"  # kept alive: then idle
        _answer_then_close(sock, timeout=6)
        assert time.monotonic() - answered >= 0.9


@pytest.mark.parametrize("path", PATHS)
def test_pipelining_without_reading_answers_does_not_grow_gateway_memory(
    start_gateway: Callable[..., GatewayProc], backend: Backend, path: str
) -> None:
    gateway = start_gateway(path)
    gateway.put_routes([route("shop-dev/payment", [{"version": "v1", "weight": 100,
                                                    "endpoints": [backend.endpoint]}])]).raise_for_status()  # fmt: skip
    # the first request waits at the backend, so every later one queues in the gateway if it keeps reading
    padding = b"p" * 1000
    first = b"GET /shop-dev/payment/slow?ms=8000 HTTP/1.1\r\nHost: x\r\n\r\n"
    request = b"GET /shop-dev/payment/x HTTP/1.1\r\nHost: x\r\nX-Padding: %s\r\n\r\n" % padding
    stream = first + request * (24 * MiB // len(request))  # about 24 000 requests
    sock = _connect(gateway)
    try:
        sock.setblocking(False)
        progress = {"sent": 0, "at": time.monotonic()}

        def pushed_until_done_or_stalled() -> bool:
            try:
                while progress["sent"] < len(stream):
                    progress["sent"] += sock.send(stream[progress["sent"] : progress["sent"] + 256 * 1024])
                    progress["at"] = time.monotonic()
            except BlockingIOError:
                pass
            return progress["sent"] >= len(stream) or time.monotonic() - progress["at"] > 2.0

        growth = peak_growth(gateway.proc.pid, lambda: wait_until(pushed_until_done_or_stalled, timeout=60,
                                                                  message="the client to send or stall"))  # fmt: skip
        assert growth < 8 * MiB, (
            f"the gateway's peak memory grew by {growth / MiB:.0f} MiB while a client pipelined "
            f"{progress['sent'] / MiB:.0f} MiB of requests without reading"
        )
        assert progress["sent"] < len(stream), "the gateway read every pipelined request: nothing held it back"
        received = bytearray()
        assert not drain(sock, received), "backpressure, not a closed connection"
    finally:
        sock.close()
