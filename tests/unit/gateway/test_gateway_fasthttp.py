"""The C fast path must change nothing but the cost: whatever it takes, httptools' path would treat alike.

Requests are checked through the real `DownstreamProtocol`, once with the fast path and once with httptools
only, fed the same bytes (split anywhere, pipelined, malformed): the requests dispatched, what is forwarded
and what the client is answered must be identical. Responses are checked against httptools' parse of the same
bytes and `http1.response_head`. And the fast path must decline everything it does not plainly understand.
"""

from __future__ import annotations

import asyncio
import random
import re
from typing import Any

import httptools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from juanie.engines.local.gateway import fast, http1
from juanie.engines.local.gateway.proxy import DataPlane, DownstreamProtocol, Request
from tests.unit.gateway.fake_transport import CLIENT, FakeTransport

pytestmark = pytest.mark.skipif(fast.parse_request is None, reason="the C fast path was not built here")

TRACE = re.compile(rb"x-trace-id: [0-9a-f]{32}\r\n")


def _forwarded(req: Request) -> bytes:
    """What would go to the backend for this request (trace ids masked: they are random)."""
    if req.tail is not None:
        head = b"%s %s HTTP/1.1\r\n%s" % (req.method, req.target, req.tail)
    else:
        head = http1.request_head(req.method, req.target, req.headers, CLIENT[0].encode(), req.chunked)
    return TRACE.sub(b"x-trace-id: *\r\n", head)


def _serve(pieces: list[bytes], use_fast: bool) -> tuple[list[tuple[Any, ...]], bytes, bool]:
    """Feed a connection, answering each request once its body is in. Returns requests, bytes out, closed."""
    loop = asyncio.new_event_loop()
    try:
        plane = DataPlane(loop)
        seen: list[tuple[Any, ...]] = []

        def dispatch(down: DownstreamProtocol, req: Request) -> None:
            plane.active += 1  # answered by `settle` below, when its body has arrived

        def settle() -> None:
            while (req := proto.current) is not None and req.body_done and not proto.closed:
                body = b"".join(req.body)
                seen.append((req.method, req.target, req.host, req.keep_alive, req.http10, _forwarded(req), body))
                proto.respond(req, 200, "ok")

        plane.dispatch = dispatch  # type: ignore[method-assign]
        proto = DownstreamProtocol(plane)
        proto.fast = use_fast
        transport = FakeTransport()
        proto.connection_made(transport)
        for piece in pieces:
            if proto.closed:
                break
            proto.data_received(piece)
            settle()
        return seen, transport.written, proto.closed
    finally:
        loop.close()


def _both_paths_agree(pieces: list[bytes]) -> list[tuple[Any, ...]]:
    fast_result = _serve(pieces, use_fast=True)
    slow_result = _serve(pieces, use_fast=False)
    assert fast_result == slow_result
    return fast_result[0]


def test_a_plain_request_is_taken_by_the_fast_path_with_the_forwarding_fields() -> None:
    raw = b"GET /a?b=1 HTTP/1.1\r\nHost: Shop.Localhost:8480\r\nUser-Agent: wrk\r\nX-Forwarded-For: 9.9.9.9\r\n\r\n"
    taken = fast.parse_request(raw, 0, b"10.1.2.3")  # type: ignore[misc]
    assert taken is not None
    end, method, target, host, tail, keep_alive, http10 = taken
    assert (end, method, target, host, keep_alive, http10) == (len(raw), b"GET", b"/a?b=1", b"Shop.Localhost:8480",
                                                               True, False)  # fmt: skip
    lines = tail.split(b"\r\n")
    assert lines[:4] == [b"host: Shop.Localhost:8480", b"user-agent: wrk", b"x-forwarded-for: 9.9.9.9, 10.1.2.3",
                         b"x-forwarded-proto: http"]  # fmt: skip
    assert re.fullmatch(rb"x-trace-id: [0-9a-f]{32}", lines[4]) and lines[5:] == [b"", b""]
    other = fast.parse_request(raw, 0, b"10.1.2.3")  # type: ignore[misc]
    assert other is not None and other[4] != tail  # a new trace id per request
    forwarded = TRACE.sub(b"x-trace-id: *\r\n", b"GET /a?b=1 HTTP/1.1\r\n" + tail)
    assert _both_paths_agree([raw]) == [(b"GET", b"/a?b=1", b"Shop.Localhost:8480", True, False, forwarded, b"")]


@pytest.mark.parametrize(
    "raw",
    [
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",  # a body: the streaming path carries it
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
        b"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n",  # absolute form
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"BREW / HTTP/1.1\r\nHost: a\r\n\r\n",  # not a method httptools knows
        b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",  # which host routes? not the fast path's call
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",  # llhttp refuses it
        b"GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: a\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n",  # obs-fold
        b"GET / HTTP/1.1\nHost: a\n\n",  # bare LF
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9\r\n\r\n",  # obs-text
        b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n",
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n",  # incomplete
        b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-N: v\r\n" * 100 + b"\r\n",  # more fields than it takes
    ],
)
def test_the_fast_path_declines_what_it_does_not_plainly_understand(raw: bytes) -> None:
    assert fast.parse_request(raw, 0, b"10.1.2.3") is None  # type: ignore[misc]
    _both_paths_agree([raw])


def test_keep_alive_follows_the_version_and_connection_tokens() -> None:
    def keep(raw: bytes) -> bool:
        taken = fast.parse_request(raw, 0, b"1")  # type: ignore[misc]
        assert taken is not None
        return taken[5]

    assert keep(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert not keep(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n")
    assert not keep(b"GET / HTTP/1.0\r\n\r\n")
    assert keep(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")


def test_pipelined_requests_are_taken_one_after_another_and_the_rest_goes_to_httptools() -> None:
    plain = b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
    with_body = b"POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    last = b"GET /three HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    stream = plain + with_body + plain + last
    seen = _both_paths_agree([stream])
    assert [s[1] for s in seen] == [b"/one", b"/two", b"/one", b"/three"]
    assert seen[1][6] == b"hello"
    for cut in range(1, len(stream)):  # split anywhere: a head half in httptools must be finished there
        assert _both_paths_agree([stream[:cut], stream[cut:]]) == seen


def test_nothing_after_a_request_that_closes_the_connection_is_read() -> None:
    stream = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.0\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n"
    for pieces in ([stream], [stream[:40], stream[40:]]):
        seen = _both_paths_agree(pieces)
        assert [s[1] for s in seen] == [b"/1", b"/2"]  # /2 is answered (and the connection closed), /3 not read


def test_a_malformed_request_after_plain_ones_gets_400_either_way() -> None:
    seen = _both_paths_agree([b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\x00\r\n\r\n"])
    assert len(seen) == 1
    assert b"400" in _serve([b"\x16\x03\x01garbage\r\n\r\n"], use_fast=True)[1]


# Plain values dominate, so that about half the generated requests are ones the fast path takes (checked below).
_METHODS = [b"GET"] * 20 + [b"POST", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"PUT", b"CONNECT", b"BREW", b"get"]
_TARGETS = [b"/", b"/a/b?x=1&y=%20", b"/p/"] * 8 + [b"http://h/p", b"*", b"/a b", b"/caf\xc3\xa9", b"//x", b""]
_VERSIONS = [b"HTTP/1.1"] * 12 + [b"HTTP/1.0"] * 2 + [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2"]
_NAMES = [b"host", b"X-Forwarded-For", b"Connection", b"Keep-Alive", b"Content-Length", b"X-Trace-Id",
          b"Cookie", b"X-Canary", b"TE", b"Proxy-Connection", b"Trailer", b"Accept"] * 2 + [
          b"User-Agent", b"Accept", b"X-Canary", b"Cookie"] * 6 + [
          b"HOST", b"Transfer-Encoding", b"Upgrade", b"Expect", b"Bad Name", b"", b"X_Under"]  # fmt: skip
_VALUES = [b"a.localhost", b"close", b"keep-alive", b"0", b"00", b"  spaced  ", b"tab\tin", b"", b"1.2.3.4",
           b"k=v; canary=1", b"keep-alive, close"] * 2 + [b"Upgrade", b"5", b"chunked", b"100-continue",
           b"caf\xc3\xa9", b"x\x7fy"]  # fmt: skip
_ENDINGS = [b"\r\n"] * 60 + [b"\n", b"\r\n ", b"\r"]


@st.composite
def _requests(draw: st.DrawFn) -> bytes:
    line = draw(st.sampled_from(_METHODS)) + b" " + draw(st.sampled_from(_TARGETS)) + b" "
    line += draw(st.sampled_from(_VERSIONS)) + draw(st.sampled_from(_ENDINGS))
    fields = draw(st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from(_VALUES),
                                     st.sampled_from(_ENDINGS)), max_size=3))  # fmt: skip
    if draw(st.integers(0, 3)):  # most real requests name their host first
        fields.insert(0, (b"Host", b"a.localhost", b"\r\n"))
    head = line + b"".join(name + b": " + value + ending for name, value, ending in fields)
    return head + b"\r\n" + draw(st.sampled_from([b"", b"", b"hello", b"5\r\nhello\r\n0\r\n\r\n"]))


def test_any_request_stream_is_treated_alike_by_both_paths() -> None:
    taken: list[int] = []

    @settings(max_examples=1500, deadline=None)
    @given(st.lists(_requests(), min_size=1, max_size=3), st.data())
    def check(requests: list[bytes], data: st.DataObject) -> None:
        stream = b"".join(requests)
        cut = data.draw(st.integers(0, len(stream)))
        _both_paths_agree([stream[:cut], stream[cut:]] if 0 < cut < len(stream) else [stream])
        taken.append(fast.parse_request(stream, 0, b"1") is not None)  # type: ignore[misc]

    check()
    assert sum(taken) >= len(taken) // 10, "too few inputs reached the fast path for the comparison to mean much"


def test_mutated_requests_are_treated_alike_by_both_paths() -> None:
    """Real-looking heads with a few bytes changed, dropped or added: where validity is decided byte by byte."""
    plain = [
        b"GET /a/b?x=1 HTTP/1.1\r\nHost: shop.localhost:8480\r\nUser-Agent: wrk\r\nAccept: */*\r\n"
        b"X-Forwarded-For: 1.2.3.4\r\nConnection: keep-alive\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 0\r\nCookie: a=b; canary=1\r\n\r\n",
    ]
    alphabet = b" \t\r\n:,;/?%0aAzZ\x00\x7f\x80\xff-_*"
    rnd = random.Random(20261207)
    for _ in range(3000):
        raw = bytearray(rnd.choice(plain) * rnd.randint(1, 2))
        for _ in range(rnd.randint(1, 3)):
            at, what = rnd.randrange(len(raw)), rnd.random()
            if what < 0.4:
                raw[at] = rnd.choice(alphabet)
            elif what < 0.7:
                del raw[at]
            else:
                raw.insert(at, rnd.choice(alphabet))
        cut = rnd.randrange(len(raw) + 1)
        _both_paths_agree([bytes(raw[:cut]), bytes(raw[cut:])] if 0 < cut < len(raw) else [bytes(raw)])


# --- responses ------------------------------------------------------------------------------------------------


class _Collect:
    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.done = False
        self.keep_alive = False
        self.parser: httptools.HttpResponseParser | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True
        assert self.parser is not None
        self.keep_alive = self.parser.should_keep_alive()  # as UpstreamConnection reads it: only valid here


def _httptools_view(raw: bytes, http10: bool, keep_alive: bool) -> tuple[int, bytes, bytes, bool] | None:
    """What the httptools path makes of a complete response: status, client head, body, backend keep-alive."""
    collect = _Collect()
    parser = collect.parser = httptools.HttpResponseParser(collect)
    try:
        parser.feed_data(raw)
    except httptools.HttpParserError:
        return None
    if not collect.done:
        return None
    status = parser.get_status_code()
    framing = http1.response_head(status, collect.headers, head_request=False, client_http10=http10,
                                  client_keep_alive=keep_alive, version=b"v7")  # fmt: skip
    return status, framing.head, collect.body, collect.keep_alive


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
        b"Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nhello",
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nX-A:  b \r\n\r\n",
        b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 10\r\n\r\n',
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 503 Whatever Reason\r\nConnection: close\r\nContent-Length: 007\r\n\r\n1234567",
        b"HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx",
    ],
)
@pytest.mark.parametrize(("http10", "keep_alive"), [(False, True), (False, False), (True, True), (True, False)])
def test_a_plain_response_head_is_translated_as_httptools_path_does(raw: bytes, http10: bool,
                                                                    keep_alive: bool) -> None:  # fmt: skip
    taken = fast.parse_response(raw, b"v7", http10, keep_alive)  # type: ignore[misc]
    assert taken is not None
    end, status, head, length, upstream_keep_alive = taken
    expected = _httptools_view(raw, http10, keep_alive)
    assert expected is not None
    assert (status, head, raw[end : end + length], upstream_keep_alive) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nuntil the connection closes",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n",  # incomplete
        b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
        b"HTTP/1.1 200 OK\r\nX-Name: caf\xc3\xa9\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 999 Nine\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/2 200\r\nContent-Length: 0\r\n\r\n",
    ],
)
def test_the_fast_path_leaves_other_responses_to_httptools(raw: bytes) -> None:
    assert fast.parse_response(raw, b"v7", False, True) is None  # type: ignore[misc]


_STATUS = [b"200 OK", b"204 No Content", b"304 Not Modified", b"404 Not Found", b"500"] * 2 + [
    b"100 Continue", b"2000 X"]  # fmt: skip
_RESPONSE_NAMES = [b"Connection", b"Keep-Alive", b"Server", b"Set-Cookie", b"X-Juanie-Version", b"TE"] * 2 + [
    b"Content-Length", b"content-length", b"Transfer-Encoding", b"Upgrade", b"Bad Name"]  # fmt: skip
_RESPONSE_VALUES = [b"0", b"3", b"12", b"close", b"keep-alive", b"a=b; Path=/", b" x "] * 2 + [
    b"chunked", b"caf\xc3\xa9"]  # fmt: skip


@st.composite
def _responses(draw: st.DrawFn) -> bytes:
    line = draw(st.sampled_from([b"HTTP/1.1 ", b"HTTP/1.0 "])) + draw(st.sampled_from(_STATUS))
    fields = draw(st.lists(st.tuples(st.sampled_from(_RESPONSE_NAMES), st.sampled_from(_RESPONSE_VALUES),
                                     st.sampled_from(_ENDINGS)), max_size=5))  # fmt: skip
    if draw(st.integers(0, 2)):
        fields.append((b"Content-Length", draw(st.sampled_from([b"0", b"3", b"12"])), b"\r\n"))
    head = line + b"\r\n" + b"".join(name + b": " + value + ending for name, value, ending in fields) + b"\r\n"
    return head + draw(st.sampled_from([b"", b"abc", b"abcdefghijkl"]))


def test_any_response_the_fast_path_takes_is_translated_as_httptools_path_does() -> None:
    taken: list[bool] = []

    @settings(max_examples=1000, deadline=None)
    @given(_responses(), st.booleans(), st.booleans())
    def check(raw: bytes, http10: bool, keep_alive: bool) -> None:
        result = fast.parse_response(raw, b"v7", http10, keep_alive)  # type: ignore[misc]
        taken.append(result is not None)
        if result is None:
            return
        end, status, head, length, upstream_keep_alive = result
        complete = raw[:end] + (raw[end:] + b"x" * length)[:length]  # the rest of a partial body is still to come
        expected = _httptools_view(complete, http10, keep_alive)
        assert expected is not None, "the fast path took a response httptools rejects"
        assert (status, head, complete[end:], upstream_keep_alive) == expected

    check()
    assert sum(taken) >= len(taken) // 10, "too few inputs reached the fast path for the comparison to mean much"
