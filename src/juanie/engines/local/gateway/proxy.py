"""The data plane: client connections, request parsing, and the per-request routing decision.

`DataPlane` holds everything requests share (the current `RouteTable`, the connection pool, in-flight counts
per endpoint, the traffic statistics). `DownstreamProtocol` parses client requests and answers them in order
(pipelined requests queue up); the proxying itself is an `exchange.Exchange`. Plain heads without a body are
taken by the C fast path (`fast.parse_request`) in one call; everything else, and everything when the fast
path is not built, goes through httptools.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque

import httptools

from juanie.engines.local.gateway import fast, http1
from juanie.engines.local.gateway.exchange import Exchange
from juanie.engines.local.gateway.signals import TrafficStats
from juanie.engines.local.gateway.table import CompiledRoute, RouteTable, choose_backend, forced_track
from juanie.engines.local.gateway.upstream import ConnectionPool


class DataPlane:
    """Shared state of the proxy. Lives on one event loop; nothing here is thread-safe or needs to be."""

    def __init__(self, loop: asyncio.AbstractEventLoop, table: RouteTable | None = None) -> None:
        self.loop = loop
        self.table = table or RouteTable()
        self.pool = ConnectionPool()
        self.stats = TrafficStats()
        self.inflight: dict[str, int] = {}
        self.active = 0  # requests being answered right now, routed or not
        self.upstream_errors: dict[tuple[str, str, str], int] = {}
        self.connections: set[DownstreamProtocol] = set()
        self.exchanges: set[Exchange] = set()  # started and not finished: checked for timeouts
        self.draining = False
        self.wall_offset = time.time() - loop.time()  # loop time -> wall-clock time for the statistics
        self._rr = 0

    def replace_table(self, table: RouteTable) -> None:
        """Swap the route table: requests already on a backend finish there; new ones see the new table."""
        self.table = table
        self.pool.retain_only(table.endpoints)

    def inflight_of(self, endpoint: str) -> int:
        return self.inflight.get(endpoint, 0)

    def inflight_inc(self, endpoint: str) -> None:
        self.inflight[endpoint] = self.inflight.get(endpoint, 0) + 1

    def inflight_dec(self, endpoint: str) -> None:
        left = self.inflight.get(endpoint, 0) - 1
        if left > 0:
            self.inflight[endpoint] = left
        else:
            self.inflight.pop(endpoint, None)

    def next_rr(self) -> int:
        self._rr += 1
        return self._rr

    def check_timeouts(self) -> None:
        """Called a few times a second: one sweep instead of a timer per request keeps the hot path cheap."""
        now = self.loop.time()
        for exchange in [e for e in self.exchanges if e.deadline <= now]:
            exchange.check_timeout(now)

    def housekeep(self, tick: int) -> None:
        """Called every 0.1 s: request timeouts each time, idle upstream connections every second, stale series
        every minute."""
        self.check_timeouts()
        if tick % 10 == 0:
            self.pool.sweep(self.loop.time())
            self.wall_offset = time.time() - self.loop.time()  # follow wall-clock adjustments
        if tick % 600 == 0:
            self.stats.forget_older_than(time.time())

    async def drain(self, seconds: float) -> None:
        """Stop taking requests on kept-alive connections, let in-flight ones finish (up to `seconds`), close all.

        The listening socket must already be closed (or no longer accepted on) by the caller.
        """
        self.draining = True
        for conn in list(self.connections):
            conn.close_if_idle()
        deadline = self.loop.time() + seconds
        while self.active > 0 and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.abort()
        self.pool.close_all()

    def upstream_error(self, route: CompiledRoute, reason: str) -> None:
        key = (route.route.env, route.route.service, reason)
        self.upstream_errors[key] = self.upstream_errors.get(key, 0) + 1

    def dispatch(self, down: DownstreamProtocol, req: Request) -> None:
        """Route one request and start proxying it, or answer it directly (404, 503, injected faults)."""
        self.active += 1
        match = self.table.lookup(req.host, req.target)
        if match is None:
            down.respond(req, 404, "no route for host/path")
            return
        route = match.route
        backend = route.only
        if backend is None:
            track = None
            if route.header_rules or route.cookie_rules:
                headers = req.headers if req.tail is None else http1.header_fields(req.head)
                track = forced_track(route, dict(headers))
            backend = choose_backend(route, track, random.random())
        if backend is None:
            spec = route.route
            self.stats.record((spec.env, spec.service, ""), 503, self.loop.time() - req.started, _now())
            down.respond(req, 503, "no endpoints for this route", spec.name)
            return
        fault = route.route.fault
        if fault.abort_percent and random.random() * 100 < fault.abort_percent:
            spec = route.route
            self.stats.record(
                (spec.env, spec.service, backend.backend.version),
                fault.abort_status,
                self.loop.time() - req.started,
                _now(),
            )
            down.respond(req, fault.abort_status, "fault injected", spec.name)
            return
        exchange = req.exchange = Exchange(self, down, req, route, backend, match.path)
        if fault.delay_ms:
            self.loop.call_later(fault.delay_ms / 1000, exchange.start)
        else:
            exchange.start()


def _now() -> float:
    return time.time()


_parse_request = fast.parse_request


class Request:
    """A parsed request head plus its body as far as it has arrived.

    A request the fast path took has `tail` (its forwarded head after the request line, built in C) and `head`
    (its raw head, read only when a route matches on headers); its `headers` stay empty.
    """

    __slots__ = (
        "body", "body_done", "chunked", "discard", "exchange", "head", "headers", "host", "http10", "keep_alive",
        "method", "started", "tail", "target",
    )  # fmt: skip

    def __init__(self) -> None:
        self.method = b"GET"
        self.target = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.host = b""
        self.chunked = False
        self.keep_alive = True
        self.http10 = False
        self.body: list[bytes] = []
        self.body_done = False
        self.discard = False
        self.exchange: Exchange | None = None
        self.started = 0.0
        self.tail: bytes | None = None
        self.head = b""


class DownstreamProtocol(asyncio.Protocol):
    """One client connection: parse requests, answer them one after another, keep the connection alive."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.client_ip = b"unknown"
        self.queue: deque[Request] = deque()
        self.current: Request | None = None
        self.parsing: Request | None = None
        self.closed = False
        self.reading_paused = False  # paused because the backend reads the request body slower than it comes
        self.broken = False  # the client sent something unparseable: close after the current response
        self.fast = _parse_request is not None  # off for good once httptools saw an error or an upgrade
        self.final = False  # a request that ends the connection was read: nothing after it is
        self._dispatching = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if peer:
            self.client_ip = str(peer[0]).encode()
        self.plane.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.final and self.parsing is None:
            return  # bytes after the request that closes the connection are not requests (llhttp agrees)
        if self.fast and self.parsing is None:  # httptools holds no part of a request: try the fast path
            data = self._take_plain_heads(data)
            if not data:
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fast = False
            # protocol upgrades (WebSocket, CONNECT) are not proxied: the request was forwarded without its
            # Upgrade header and is answered normally; nothing after it on this connection can be trusted
            for req in (self.current, *self.queue):
                if req is not None:
                    req.keep_alive = False
        except httptools.HttpParserError:
            self.fast = False
            if self.transport is None or self.closed or (self.final and self.parsing is None):
                return
            if self.current is None:
                self.write(http1.error_response(400, "malformed HTTP request", keep_alive=False))
                self.abort(graceful=True)
            else:  # a response is on its way: finish it, then close (a 400 now would corrupt it)
                self.broken = True
                self.queue.clear()
                self.set_reading(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.plane.connections.discard(self)
        current = self.current
        if current is not None and current.exchange is not None:
            current.exchange.client_gone()

    def pause_writing(self) -> None:
        if self.current is not None and self.current.exchange is not None:
            self.current.exchange.downstream_paused(True)

    def resume_writing(self) -> None:
        if self.current is not None and self.current.exchange is not None:
            self.current.exchange.downstream_paused(False)

    def _take_plain_heads(self, data: bytes) -> bytes:
        """Accept the complete plain requests at the start of `data`; return what is left for httptools."""
        pos = 0
        size = len(data)
        client_ip = self.client_ip
        assert _parse_request is not None
        while not self.closed:
            head = _parse_request(data, pos, client_ip)
            if head is None:
                return data[pos:] if pos else data
            req = Request()
            req.started = self.plane.loop.time()
            end, req.method, req.target, req.host, req.tail, req.keep_alive, req.http10 = head
            req.head = data[pos:end]
            req.body_done = True
            self._accept(req)
            if end >= size or self.final:
                return b""
            pos = end
        return b""

    def _accept(self, req: Request) -> None:
        """A request head is complete: answer it now, or after the requests ahead of it on this connection."""
        if not req.keep_alive:
            self.final = True
        if self.current is None and not self.queue:  # the common case: nothing pipelined ahead of it
            self.current = req
            self.plane.dispatch(self, req)
        else:
            self.queue.append(req)
            if self.current is None:
                self._next()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.parsing = Request()

    def on_url(self, url: bytes) -> None:
        assert self.parsing is not None
        self.parsing.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        req = self.parsing
        assert req is not None
        name = name.lower()
        req.headers.append((name, value))
        if name == b"host":
            req.host = value
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            req.chunked = True

    def on_headers_complete(self) -> None:
        req = self.parsing
        assert req is not None
        req.started = self.plane.loop.time()
        req.method = self.parser.get_method()
        req.keep_alive = self.parser.should_keep_alive()
        req.http10 = self.parser.get_http_version() == "1.0"
        if req.target[:1] != b"/" and b"://" in req.target:  # absolute form: http://host/path
            authority, _, path = req.target.partition(b"://")[2].partition(b"/")
            req.host, req.target = authority, b"/" + path
        self._accept(req)

    def on_body(self, body: bytes) -> None:
        req = self.parsing
        if req is None or req.discard:
            return
        if req.exchange is not None and req.exchange.sending:
            req.exchange.request_body(body)
        else:
            req.body.append(body)

    def on_message_complete(self) -> None:
        req = self.parsing
        if req is None:
            return
        req.body_done = True
        self.parsing = None
        if req.exchange is not None and req.exchange.sending:
            req.exchange.request_end()

    # answering
    def _next(self) -> None:
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self.current is None and self.queue and not self.closed:
                self.current = self.queue.popleft()
                self.plane.dispatch(self, self.current)
        finally:
            self._dispatching = False

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def set_reading(self, reading: bool) -> None:
        if self.transport is None or self.closed or self.transport.is_closing() or self.reading_paused != reading:
            return
        self.reading_paused = not reading
        if reading:
            self.transport.resume_reading()
        else:
            self.transport.pause_reading()

    def respond(self, req: Request, status: int, message: str, route: str = "") -> None:
        keep = req.keep_alive and not self.plane.draining
        self.write(http1.error_response(status, message, keep, {"route": route} if route else None))
        self.finish(req, keep)

    def finish(self, req: Request, keep_alive: bool) -> None:
        """The response to `req` is complete: move to the next request or close the connection."""
        self.plane.active -= 1
        if self.current is req:
            self.current = None
        if not req.body_done:
            req.discard = True
            req.body = []
        if self.reading_paused:
            self.set_reading(True)
        if not keep_alive or self.plane.draining or self.broken:
            self.abort(graceful=True)
            return
        if self.queue:
            self._next()

    def abort(self, graceful: bool = False) -> None:
        """Close the client connection; `graceful` lets queued bytes go out first."""
        if self.transport is None or self.closed:
            return
        self.closed = True
        if graceful:
            self.transport.close()
        else:
            self.transport.abort()

    def close_if_idle(self) -> None:
        if self.current is None and not self.queue:
            self.abort(graceful=True)
