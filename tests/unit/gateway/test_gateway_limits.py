"""A client connection's limits (gateway/limits.py) through the real `DownstreamProtocol`, on both parsing paths.

The attacks themselves run against a real gateway in tests/security/test_gateway_limits.py; these check the
edges: what is held is answered, in order, once there is room; a head under the cap passes however it is split.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from juanie.engines.local.gateway import fast
from juanie.engines.local.gateway.limits import ConnectionLimits
from juanie.engines.local.gateway.proxy import DataPlane, DownstreamProtocol, Request
from tests.unit.gateway.fake_transport import FakeTransport

PATHS = [pytest.param(True, id="fast path"), pytest.param(False, id="httptools")]


class Connection:
    """A protocol whose requests wait to be answered (`answer_one`), as if each went to a backend."""

    def __init__(self, loop: asyncio.AbstractEventLoop, use_fast: bool, limits: ConnectionLimits) -> None:
        self.plane = DataPlane(loop, limits=limits)
        self.dispatched: list[Request] = []

        def dispatch(down: DownstreamProtocol, req: Request) -> None:
            self.plane.active += 1
            self.dispatched.append(req)

        self.plane.dispatch = dispatch  # type: ignore[method-assign]
        self.proto = DownstreamProtocol(self.plane)
        self.proto.fast = use_fast and fast.parse_request is not None
        self.transport = FakeTransport()
        self.proto.connection_made(self.transport)

    def answer_one(self) -> bytes:
        req = self.proto.current
        assert req is not None
        self.proto.respond(req, 200, "ok")
        return req.target


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.parametrize("use_fast", PATHS)
def test_pipelined_requests_over_the_cap_are_held_then_answered_in_order(loop: asyncio.AbstractEventLoop,
                                                                         use_fast: bool) -> None:  # fmt: skip
    conn = Connection(loop, use_fast, ConnectionLimits(max_pipeline=4))
    stream = b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(100))
    conn.proto.data_received(stream[:1500])
    conn.proto.data_received(stream[1500:])  # a read the transport made before it saw the pause
    assert len(conn.proto.queue) <= 4 + 1500 // 28  # the fast path stops at the cap; httptools after its read
    assert not conn.transport.reading and conn.proto.held
    answered = [conn.answer_one() for _ in range(100)]
    assert answered == [b"/%d" % i for i in range(100)]
    assert conn.transport.reading and not conn.proto.held and not conn.proto.queue
    assert conn.transport.written.count(b"HTTP/1.1 200 OK\r\n") == 100


@pytest.mark.parametrize("use_fast", PATHS)
def test_nothing_more_is_answered_while_the_client_does_not_read(loop: asyncio.AbstractEventLoop,
                                                                 use_fast: bool) -> None:  # fmt: skip
    conn = Connection(loop, use_fast, ConnectionLimits(max_pipeline=4))
    conn.proto.data_received(b"GET /0 HTTP/1.1\r\nHost: a\r\n\r\n")
    conn.proto.pause_writing()  # the transport's buffer is full: the client reads no answers
    conn.proto.data_received(b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(1, 20)))
    assert conn.answer_one() == b"/0"
    assert conn.proto.current is None and len(conn.dispatched) == 1  # queued, not answered into a full buffer
    assert not conn.transport.reading
    conn.proto.resume_writing()
    assert [conn.answer_one() for _ in range(19)] == [b"/%d" % i for i in range(1, 20)]
    assert conn.transport.reading


@pytest.mark.parametrize("use_fast", PATHS)
@pytest.mark.parametrize("piece", [1 << 20, 7])
def test_a_head_under_the_cap_passes_and_one_over_it_is_431(loop: asyncio.AbstractEventLoop, use_fast: bool,
                                                            piece: int) -> None:  # fmt: skip
    def serve(head: bytes) -> Connection:
        conn = Connection(loop, use_fast, ConnectionLimits(max_head_bytes=2000))
        for at in range(0, len(head), piece):
            if conn.proto.closed:
                break
            conn.proto.data_received(head[at : at + piece])
        return conn

    under = serve(b"GET / HTTP/1.1\r\nHost: a\r\nCookie: " + b"c" * 1900 + b"\r\n\r\n")
    assert [r.target for r in under.dispatched] == [b"/"] and not under.proto.closed
    for over in (b"GET / HTTP/1.1\r\nHost: a\r\nCookie: " + b"c" * 2100 + b"\r\n\r\n",
                 b"GET /" + b"u" * 2100 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-N: v\r\n" * 300 + b"\r\n",
                 b"GET / HTTP/1.1\r\nHost: a\r\nCookie: " + b"c" * 2100):  # never ends  # fmt: skip
        conn = serve(over)
        assert not conn.dispatched and conn.proto.closed
        assert conn.transport.written.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


@pytest.mark.parametrize("use_fast", PATHS)
def test_a_connection_waits_for_a_head_and_idles_only_so_long(loop: asyncio.AbstractEventLoop,
                                                              use_fast: bool) -> None:  # fmt: skip
    limits = ConnectionLimits(header_timeout=10, idle_timeout=60)
    t0 = loop.time()

    silent = Connection(loop, use_fast, limits)  # never sends anything: closed, without an answer
    silent.proto.check_wait(t0 + 9)
    assert not silent.proto.closed
    silent.proto.check_wait(t0 + 10.5)
    assert silent.proto.closed and silent.transport.written == b""

    slow = Connection(loop, use_fast, limits)  # a head that never ends: 408, the clock not reset by each byte
    for second in range(1, 12):
        slow.proto.data_received(b"GET / HTTP/1.1\r\nX-Slow: " if second == 1 else b"x")
        slow.proto.check_wait(t0 + second)
    assert slow.proto.closed and slow.transport.written.startswith(b"HTTP/1.1 408 Request Timeout\r\n")

    kept = Connection(loop, use_fast, limits)  # answered, then idle: closed after idle_timeout, not before
    kept.proto.data_received(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    kept.proto.check_wait(t0 + 100)  # busy: a request is being answered, whatever the time
    kept.answer_one()
    kept.proto.check_wait(t0 + 101)
    kept.proto.check_wait(t0 + 160)
    assert not kept.proto.closed
    kept.proto.check_wait(t0 + 161.5)
    assert kept.proto.closed


@pytest.mark.parametrize("use_fast", PATHS)
def test_a_body_no_backend_takes_yet_is_held_only_up_to_its_cap(loop: asyncio.AbstractEventLoop,
                                                                use_fast: bool) -> None:  # fmt: skip
    conn = Connection(loop, use_fast, ConnectionLimits(max_buffered_body_bytes=1000))
    first = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n"  # answered slowly: /b waits behind it
    conn.proto.data_received(first + b"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
    assert conn.proto.buffered == 5000 and not conn.transport.reading
    conn.proto.data_received(b"y" * 5000)  # read before the pause took effect: held, not parsed
    assert conn.proto.buffered == 5000 and len(conn.proto.held) == 5000
    assert conn.answer_one() == b"/a"
    assert not conn.transport.reading  # /b is answered now, but nothing took its body yet
    assert conn.answer_one() == b"/b"  # answered without its body (as a backend may): the body is dropped
    assert conn.proto.buffered == 0 and not conn.proto.held and conn.transport.reading
