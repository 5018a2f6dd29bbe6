"""Connections to backends: one asyncio Protocol per TCP connection and a keep-alive pool per endpoint.

A connection carries one request at a time. Its parser callbacks are forwarded to the current `exchange` (see
`proxy.Exchange`), which writes the response to the client as bytes arrive, so streams (SSE) pass unbuffered.
Idle connections are reused LIFO and closed after `idle_timeout` seconds, shorter than common server
keep-alive timeouts, so the gateway rarely writes on a connection the backend is about to close.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import httptools

from juanie.engines.local.gateway import fast

_fast = fast.parse_response is not None


class ResponseSink(Protocol):
    """What a connection reports to while it carries a request (implemented by proxy.Exchange)."""

    def response_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> None: ...
    def response_body(self, data: bytes) -> None: ...
    def response_complete(self, keep_alive: bool) -> None: ...
    def upstream_lost(self, reason: str) -> None: ...
    def upstream_paused(self, paused: bool) -> None: ...
    def flush(self) -> None: ...
    def plain_response(self, data: bytes) -> int: ...
    def plain_body(self, data: bytes, left: int) -> int: ...


def split_endpoint(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive connection to a backend endpoint."""

    __slots__ = (
        "_headers",
        "body_left",
        "closed",
        "endpoint",
        "exchange",
        "idle_since",
        "parsed",
        "parser",
        "paused",
        "pool",
        "transport",
    )

    def __init__(self, endpoint: str, pool: ConnectionPool) -> None:
        self.endpoint = endpoint
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: ResponseSink | None = None
        self.closed = False
        self.idle_since = 0.0
        self.paused = False  # reading paused because the client is slower than the backend
        self._headers: list[tuple[bytes, bytes]] = []
        self.body_left = 0  # bytes of a fast-path response body still to relay
        self.parsed = False  # httptools carries the current response (the fast path did not take its head)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.exchange is None:  # bytes nobody asked for: the connection is no longer trustworthy
            self.close()
            return
        exchange = self.exchange
        if self.body_left:
            self.body_left = exchange.plain_body(data, self.body_left)
            return
        if _fast and not self.parsed:
            left = exchange.plain_response(data)
            if left >= 0:
                self.body_left = left
                return
        self.parsed = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.exchange = None
            self.close()
            exchange.flush()
            exchange.upstream_lost("invalid_response")
            return
        if self.exchange is not None:
            self.exchange.flush()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.discard(self)
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.upstream_lost("reset" if exc is not None else "closed")

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.upstream_paused(True)

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.upstream_paused(False)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        headers, self._headers = self._headers, []
        if self.exchange is not None:
            self.exchange.response_head(self.parser.get_status_code(), headers)

    def on_body(self, body: bytes) -> None:
        if self.exchange is not None:
            self.exchange.response_body(body)

    def on_message_complete(self) -> None:
        self.parsed = False
        if self.exchange is not None:
            self.exchange.response_complete(self.parser.should_keep_alive())

    # used by the proxy
    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def set_reading(self, reading: bool) -> None:
        if self.transport is None or self.transport.is_closing() or self.paused != reading:
            return
        self.paused = not reading
        if reading:
            self.transport.resume_reading()
        else:
            self.transport.pause_reading()

    def close(self) -> None:
        self.closed = True
        self.exchange = None
        if self.transport is not None:
            self.transport.close()

    def reset_parser(self) -> None:
        """Start a fresh parser (after a response whose body the parser could not know was absent)."""
        self.parser = httptools.HttpResponseParser(self)


class ConnectionPool:
    """Idle keep-alive connections per endpoint; new connections are opened on demand."""

    def __init__(self, idle_timeout: float = 3.0, max_idle_per_endpoint: int = 256) -> None:
        self.idle_timeout = idle_timeout
        self.max_idle = max_idle_per_endpoint
        self._idle: dict[str, list[UpstreamConnection]] = {}

    def take(self, endpoint: str) -> UpstreamConnection | None:
        """An idle, still open connection to `endpoint`, most recently used first; None if there is none."""
        conns = self._idle.get(endpoint)
        while conns:
            conn = conns.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                return conn
        return None

    async def connect(self, endpoint: str) -> UpstreamConnection:
        """Open a new connection; raises OSError when the endpoint refuses or cannot be reached."""
        host, port = split_endpoint(endpoint)
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: UpstreamConnection(endpoint, self), host, port)
        return conn

    def give_back(self, conn: UpstreamConnection, now: float) -> None:
        conn.exchange = None
        if conn.closed:
            return
        conns = self._idle.setdefault(conn.endpoint, [])
        if len(conns) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = now
        conns.append(conn)

    def discard(self, conn: UpstreamConnection) -> None:
        conns = self._idle.get(conn.endpoint)
        if conns and conn in conns:
            conns.remove(conn)

    def idle_count(self, endpoint: str) -> int:
        return len(self._idle.get(endpoint, ()))

    def sweep(self, now: float) -> None:
        """Close connections idle for longer than `idle_timeout`."""
        for endpoint, conns in list(self._idle.items()):
            keep = [c for c in conns if now - c.idle_since < self.idle_timeout and not c.closed]
            for conn in conns:
                if conn not in keep:
                    conn.close()
            if keep:
                self._idle[endpoint] = keep
            else:
                del self._idle[endpoint]

    def retain_only(self, endpoints: frozenset[str]) -> None:
        """Close idle connections to endpoints no route names any more (they are about to be stopped)."""
        for endpoint in [e for e in self._idle if e not in endpoints]:
            for conn in self._idle.pop(endpoint):
                conn.close()

    def close_all(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
