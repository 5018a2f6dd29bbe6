"""Client connections: parse requests, answer them in order, keep the connection alive, within limits.

`DownstreamProtocol` is one client connection. Plain heads without a body are taken by the C fast path
(`fast.parse_request`) in one call; everything else, and everything when the fast path is not built, goes
through httptools. Pipelined requests queue up and are answered one after another; each request is routed by
the `proxy.DataPlane` and proxied by an `exchange.Exchange`. What a connection may cost the gateway (head
size, queued requests, buffered body, waiting time) is bounded as `limits` describes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

import httptools

from juanie.engines.local.gateway import fast, http1

if TYPE_CHECKING:
    from juanie.engines.local.gateway.exchange import Exchange
    from juanie.engines.local.gateway.proxy import DataPlane

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


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop httptools once a head passed its cap (see `limits`)."""


class DownstreamProtocol(asyncio.Protocol):
    """One client connection: parse requests, answer them one after another, keep the connection alive.

    What a connection may hold is bounded (see `limits`): the head being read (`head_fields`, `head_bytes`),
    the requests queued behind the one being answered (`queue`, then `held`: the unparsed rest of a read, with
    reading paused), and body bytes no backend has taken yet (`buffered`). Reading stops while any of these is
    full, while the backend takes a body slower than it comes (`upstream_full`) and, for good, once the
    connection is `broken`; `_resume` starts it again once none holds it back. How long it may wait for a head
    or, idle, for anything is checked by `check_wait`, called by the data plane once a second.
    """

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.client_ip = b"unknown"
        self.queue: deque[Request] = deque()
        self.current: Request | None = None
        self.parsing: Request | None = None
        self.closed = False
        self.reading_paused = False
        self.upstream_full = False  # the backend reads the request body slower than it comes
        self.write_paused = False  # the client does not read its answers: answer nothing more until it does
        self.broken = False  # the client sent something unparseable: close after the current response
        self.fast = _parse_request is not None  # off for good once httptools saw an error or an upgrade
        self.final = False  # a request that ends the connection was read: nothing after it is
        self.held = b""  # the unparsed rest of a read, waiting for room in the queue
        self.buffered = 0  # request body bytes held in `Request.body` lists
        self.in_head = False  # httptools holds part of a head
        self.head_fields = 0  # bytes of the head in httptools' hands that its callbacks reported
        self.head_bytes = 0  # bytes of the head in reads before the current one
        self.accepted = 0  # heads read on this connection
        self.wait_mark: tuple[int, bool] | None = None  # (accepted, waiting for a head) when `wait_since` was set
        self.wait_since = 0.0
        limits = plane.limits
        self.max_head = limits.max_head_bytes
        self.max_pipeline = limits.max_pipeline
        self.max_buffered = limits.max_buffered_body_bytes
        self._dispatching = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if peer:
            self.client_ip = str(peer[0]).encode()
        self.plane.connections.add(self)
        self.wait_mark, self.wait_since = (0, True), self.plane.loop.time()

    def data_received(self, data: bytes) -> None:
        if self.held:  # reading is paused; a read the transport had already made goes behind what is held
            self.held += data
            return
        if self.final and self.parsing is None:
            return  # bytes after the request that closes the connection are not requests (llhttp agrees)
        if self.fast and self.parsing is None:  # httptools holds no part of a request: try the fast path
            data = self._take_plain_heads(data)
            if not data:
                return
        if len(self.queue) >= self.max_pipeline or self.buffered > self.max_buffered:
            self._hold(data)
            return
        in_head, fresh, accepted = self.in_head, self.parsing is None, self.accepted
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fast = False
            # protocol upgrades (WebSocket, CONNECT) are not proxied: the request was forwarded without its
            # Upgrade header and is answered normally; nothing after it on this connection can be trusted
            for req in (self.current, *self.queue):
                if req is not None:
                    req.keep_alive = False
            return
        except httptools.HttpParserError:
            self.fast = False
            if self.transport is None or self.closed or (self.final and self.parsing is None):
                return
            if self.in_head and self.head_fields > self.max_head:
                self._refuse(431, f"request head larger than {self.max_head} bytes")
            else:
                self._refuse(400, "malformed HTTP request")
            return
        if self.in_head:  # the head goes on past this read
            if in_head:  # it began in an earlier read: all of this read is head
                self.head_bytes += len(data)
            elif fresh and self.accepted == accepted:  # it began this read: all of it is head
                self.head_bytes = len(data)
            self.head_bytes = max(self.head_bytes, self.head_fields)  # else what the callbacks saw, at the least
            if self.head_bytes > self.max_head:
                self._refuse(431, f"request head larger than {self.max_head} bytes")
                return
        if len(self.queue) >= self.max_pipeline or self.buffered > self.max_buffered:
            self._set_reading(False)

    def _refuse(self, status: int, message: str) -> None:
        """Answer an unreadable request and close; after the response under way, if there is one."""
        self.fast = False
        if self.current is None:
            self.write(http1.error_response(status, message, keep_alive=False))
            self.abort(graceful=True)
        else:  # a response is on its way: finish it, then close (an error now would corrupt it)
            self.broken = True
            self.queue.clear()
            self._set_reading(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.plane.connections.discard(self)
        current = self.current
        if current is not None and current.exchange is not None:
            current.exchange.client_gone()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.current is not None and self.current.exchange is not None:
            self.current.exchange.downstream_paused(True)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.current is not None and self.current.exchange is not None:
            self.current.exchange.downstream_paused(False)
        elif self.queue:
            self._next()
        if self.reading_paused:
            self._resume()

    def _take_plain_heads(self, data: bytes) -> bytes:
        """Accept the complete plain requests at the start of `data`; return what is left for httptools."""
        pos = 0
        size = len(data)
        client_ip = self.client_ip
        max_head = self.max_head
        assert _parse_request is not None
        while not self.closed:
            head = _parse_request(data, pos, client_ip, max_head)
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
            if self.queue and len(self.queue) >= self.max_pipeline:
                self._hold(data[pos:])
                return b""
        return b""

    def _accept(self, req: Request) -> None:
        """A request head is complete: answer it now, or after the requests ahead of it on this connection."""
        self.accepted += 1
        if not req.keep_alive:
            self.final = True
        if self.current is None and not self.queue and not self.write_paused:  # nothing pipelined ahead of it
            self.current = req
            self.plane.dispatch(self, req)
        else:
            self.queue.append(req)
            if self.current is None:
                self._next()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.parsing = Request()
        self.in_head = True
        self.head_fields = self.head_bytes = 0

    def on_url(self, url: bytes) -> None:
        assert self.parsing is not None
        self.parsing.target += url
        self.head_fields += len(url)
        if self.head_fields > self.max_head:
            raise _HeadTooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        req = self.parsing
        assert req is not None
        self.head_fields += len(name) + len(value) + 3  # name ":" value CRLF, at the least
        if self.head_fields > self.max_head:
            raise _HeadTooLarge
        name = name.lower()
        req.headers.append((name, value))
        if name == b"host":
            req.host = value
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            req.chunked = True

    def on_headers_complete(self) -> None:
        req = self.parsing
        assert req is not None
        self.in_head = False
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
            self.buffered += len(body)

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
            while self.current is None and self.queue and not self.closed and not self.write_paused:
                self.current = self.queue.popleft()
                self.plane.dispatch(self, self.current)
        finally:
            self._dispatching = False

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def take_body(self, req: Request) -> list[bytes]:
        """The body bytes held for `req`, now taken by its exchange; reading may go on once it is sending."""
        body, req.body = req.body, []
        if body:
            self.buffered -= sum(map(len, body))
            if self.reading_paused:  # not now: what is parsed next may be more of this body
                self.plane.loop.call_soon(self._resume)
        return body

    def set_reading(self, reading: bool) -> None:
        """The backend takes the request body slower (False) or again as fast (True) as it comes."""
        self.upstream_full = not reading
        if reading:
            self._resume()
        else:
            self._set_reading(False)

    def _hold(self, data: bytes) -> None:
        """Keep the rest of a read unparsed, and read no more, until the queue has room again."""
        self.held = data
        self._set_reading(False)

    def _resume(self) -> None:
        """Parse what was held, then read from the socket again; unless something still holds reading back.

        Never called with a read half parsed: bytes are held only instead of being parsed, and a parse that
        answers a request synchronously (`finish`) finds nothing held.
        """
        if self.closed or self.broken or self.upstream_full:
            return
        while self.held and len(self.queue) < self.max_pipeline and self.buffered <= self.max_buffered:
            data, self.held = self.held, b""
            self.data_received(data)
            if self.closed or self.broken or self.upstream_full:
                return
        if not self.held and len(self.queue) < self.max_pipeline and self.buffered <= self.max_buffered:
            self._set_reading(True)

    def _set_reading(self, reading: bool) -> None:
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
        if req.body:  # held for a backend that never took it
            self.buffered -= sum(map(len, req.body))
            req.body = []
        if not req.body_done:
            req.discard = True
        if not keep_alive or self.plane.draining or self.broken:
            self.abort(graceful=True)
            return
        if self.reading_paused:
            self.upstream_full = False  # that exchange is over
            if self.queue:
                self._next()
            if not self._dispatching:  # else the `_next` under way resumes once it is done
                self._resume()
        elif self.queue:
            self._next()

    def check_wait(self, now: float) -> None:
        """Close the connection if it waited too long for a head, or idle (see `limits`). Called once a second.

        The wait is stamped here when first seen (`wait_mark`: the heads read so far, and whether one is coming),
        so reads and requests pay nothing but counting heads; a connection answering a request, or with requests
        queued it may answer, is not waiting.
        """
        if self.closed:
            return
        if self.current is not None or (self.queue and not self.write_paused):
            self.wait_mark = None
            return
        head = self.in_head or not self.accepted  # a head is coming, or the first one is awaited
        mark = (self.accepted, head)
        if mark != self.wait_mark:
            self.wait_mark, self.wait_since = mark, now
            return
        limits = self.plane.limits
        if now - self.wait_since < (limits.header_timeout if head else limits.idle_timeout):
            return
        if self.write_paused:  # it does not even read: nothing more can reach it
            self.abort()
            return
        if self.in_head:
            self.write(http1.error_response(408, "request head not received in time", keep_alive=False))
        self.abort(graceful=True)

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
