"""One proxied request: choose an endpoint, send, relay the response, account for it exactly once.

An `Exchange` is driven by callbacks (the upstream connection's parser, the data plane's timeout sweep), not
by a coroutine or a timer per request, which keeps the per-request cost low. The only await is opening a new
backend connection.
Retry rule: a request is retried on another endpoint only when the connection could not be opened;
once a single byte of it was written, a failure is answered with 502, because the backend may have
started to act on it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from juanie.engines.local.gateway import fast, http1
from juanie.engines.local.gateway.table import CompiledBackend, CompiledRoute, pick_endpoint

if TYPE_CHECKING:
    from juanie.engines.local.gateway.proxy import DataPlane, DownstreamProtocol, Request
    from juanie.engines.local.gateway.upstream import UpstreamConnection

MAX_RETRIES = 2
_parse_response = fast.parse_response
_NONE: frozenset[str] = frozenset()
_PLAIN = {keep: http1.ResponseFraming(b"", False, False, keep) for keep in (True, False)}  # length-framed as is


class Exchange:
    """The life of one request on one backend: endpoint choice, retries, response relay, accounting."""

    __slots__ = (
        "_connect_task", "_framing", "_out", "attempts", "backend", "conn", "deadline", "done", "down",
        "endpoint", "head_sent", "interim", "path", "plane", "req", "route", "sending", "status", "tried",
    )  # fmt: skip

    def __init__(
        self,
        plane: DataPlane,
        down: DownstreamProtocol,
        req: Request,
        route: CompiledRoute,
        backend: CompiledBackend,
        path: bytes,
    ) -> None:
        self.plane = plane
        self.down = down
        self.req = req
        self.route = route
        self.backend = backend
        self.path = path
        self.tried: frozenset[str] = _NONE
        self.attempts = 0
        self.endpoint: str | None = None
        self.conn: UpstreamConnection | None = None
        self.sending = False
        self.head_sent = False
        self.interim = False
        self.done = False
        self.status = 0
        self._framing: http1.ResponseFraming | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._out: list[bytes] = []
        self.deadline = 0.0  # loop time after which `check_timeout` gives up (reset by each response byte)

    # --- sending -------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.done:
            return
        self.deadline = self.plane.loop.time() + self.route.route.timeout_seconds
        self.plane.exchanges.add(self)
        self._attempt()

    def _attempt(self) -> None:
        plane = self.plane
        endpoints = self.backend.endpoints
        if len(endpoints) == 1:
            endpoint: str | None = endpoints[0]
        else:
            endpoint = pick_endpoint(endpoints, plane.inflight_of, plane.next_rr(), self.tried)
        if endpoint is None:
            self._fail(503, "no endpoints for this route")
            return
        self.endpoint = endpoint
        plane.inflight_inc(endpoint)
        conn = plane.pool.take(endpoint)
        if conn is not None:
            self._send(conn)
        else:
            self._connect_task = plane.loop.create_task(self._connect(endpoint))

    async def _connect(self, endpoint: str) -> None:
        try:
            conn = await self.plane.pool.connect(endpoint)
        except (OSError, ValueError):  # refused, unreachable, unresolvable: nothing was sent
            self._connect_task = None
            if not self.done:
                self._connect_failed(endpoint)
            return
        self._connect_task = None
        if self.done:
            conn.close()
            return
        self._send(conn)

    def _connect_failed(self, endpoint: str) -> None:
        self._release_endpoint()
        self.plane.upstream_error(self.route, "connect")
        self.tried = self.tried | {endpoint}
        self.attempts += 1
        if self.attempts > MAX_RETRIES:
            self._fail(502, "could not connect to any endpoint of this route")
        else:
            self._attempt()

    def _send(self, conn: UpstreamConnection) -> None:
        self.conn = conn
        conn.exchange = self
        req = self.req
        if req.tail is not None:  # taken by the fast path: the forwarded fields are ready, and there is no body
            conn.write(b"%s %s HTTP/1.1\r\n%s" % (req.method, self.path, req.tail))
            self.sending = True
            return
        head = http1.request_head(req.method, self.path, req.headers, self.down.client_ip, req.chunked)
        if req.body or req.chunked:  # what arrived of the body so far goes out with the head, in one write
            data = [head]
            for piece in self.down.take_body(req):
                data.append(http1.chunk(piece) if req.chunked else piece)
            if req.body_done and req.chunked:
                data.append(http1.LAST_CHUNK)
            head = b"".join(data)
        conn.write(head)
        self.sending = True

    def request_body(self, data: bytes) -> None:
        if self.conn is not None and not self.done:
            self.conn.write(http1.chunk(data) if self.req.chunked else data)

    def request_end(self) -> None:
        if self.conn is not None and not self.done and self.req.chunked:
            self.conn.write(http1.LAST_CHUNK)

    # --- receiving (called by UpstreamConnection) -----------------------------------------------------------
    def plain_response(self, data: bytes) -> int:
        """Relay a response whose head the fast path takes; the body bytes still to come, or -1 to use httptools.

        Called with the first bytes of the response. Only Content-Length framed (or bodiless) responses to
        non-HEAD requests qualify: their head is rewritten in C and the body passes as it is, counted down
        by the connection (`plain_body`) instead of parsed.
        """
        req = self.req
        if req.method == b"HEAD":  # the head announces a body that never comes: httptools knows that
            return -1
        keep_alive = req.keep_alive and not self.plane.draining
        head = _parse_response(data, self.backend.version, req.http10, keep_alive)  # type: ignore[misc]
        if head is None:
            return -1
        end, self.status, out, length, upstream_keep_alive = head
        self.head_sent = True
        self._framing = _PLAIN[keep_alive]
        have = len(data) - end
        if have < length:
            self.down.write(out + data[end:] if have else out)
            self.deadline = self.plane.loop.time() + self.route.route.timeout_seconds
            return length - have
        self.down.write(out + data[end : end + length] if length else out)
        self._end(reuse=upstream_keep_alive and have == length and req.body_done, keep_alive=keep_alive)
        return 0

    def plain_body(self, data: bytes, left: int) -> int:
        """More of a fast-path response body; returns the bytes still to come."""
        if len(data) < left:
            self.down.write(data)
            self.deadline = self.plane.loop.time() + self.route.route.timeout_seconds
            return left - len(data)
        self.down.write(data[:left] if len(data) > left else data)
        assert self._framing is not None
        self._end(reuse=len(data) == left and self.req.body_done, keep_alive=self._framing.keep_alive)
        return 0

    def response_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        req = self.req
        if 100 <= status < 200 and status != 101:
            self.interim = True
            if not req.http10:
                self.down.write(b"HTTP/1.1 %d %s\r\n\r\n" % (status, http1.reason(status)))
            return
        self.interim = False
        self.status = status
        framing = http1.response_head(
            status,
            headers,
            head_request=req.method == b"HEAD",
            client_http10=req.http10,
            client_keep_alive=req.keep_alive and not self.plane.draining,
            version=self.backend.version,
        )
        self._framing = framing
        self._out.append(framing.head)
        self.head_sent = True
        self.deadline = self.plane.loop.time() + self.route.route.timeout_seconds
        if req.method == b"HEAD":
            self._complete(reuse=False)

    def response_body(self, data: bytes) -> None:
        if self.done or self._framing is None:
            return
        self._out.append(http1.chunk(data) if self._framing.chunked_out else data)

    def response_complete(self, keep_alive: bool) -> None:
        if self.interim:
            self.interim = False
            return
        if self.done or self._framing is None:
            return
        self._complete(reuse=keep_alive and self.req.body_done and not self._framing.until_eof)

    def upstream_lost(self, reason: str) -> None:
        self.conn = None
        if self.done:
            return
        if self.head_sent and self._framing is not None and self._framing.until_eof:
            self._complete(reuse=False)
            return
        self.plane.upstream_error(self.route, reason)
        if self.head_sent:
            self._abort(502)
        else:
            self._fail(502, "the backend closed the connection before answering")

    def flush(self) -> None:
        """Send what the last read from the backend produced in one write (one syscall, not one per piece)."""
        if self._out:
            out = self._out
            self._out = []
            self.down.write(out[0] if len(out) == 1 else b"".join(out))
            if self.head_sent and not self.done:
                self.deadline = self.plane.loop.time() + self.route.route.timeout_seconds

    def upstream_paused(self, paused: bool) -> None:
        self.down.set_reading(not paused)

    def downstream_paused(self, paused: bool) -> None:
        if self.conn is not None:
            self.conn.set_reading(not paused)

    def client_gone(self) -> None:
        """The client disconnected: stop the backend side and count the request as 499 (like nginx)."""
        if self.done:
            return
        self._drop_conn()
        self._finish(499, keep_alive=False)

    # --- timeouts (checked by the data plane's sweeper, no timer per request) ------------------------------
    def check_timeout(self, now: float) -> None:
        """Before the response head: answer 504. After it the backend went silent mid-body: cut the client."""
        if self.done or now < self.deadline:
            return
        self.plane.upstream_error(self.route, "timeout")
        self._drop_conn()
        if self.head_sent:
            self._abort(504)
        else:
            self._fail(504, f"the backend did not answer within {self.route.route.timeout_seconds:g}s")

    # --- endings -------------------------------------------------------------------------------------------
    def _complete(self, reuse: bool) -> None:
        framing = self._framing
        assert framing is not None
        if framing.chunked_out:
            self._out.append(http1.LAST_CHUNK)
        self.flush()
        self._end(reuse, framing.keep_alive)

    def _end(self, reuse: bool, keep_alive: bool) -> None:
        """The whole response went to the client: pool or close the backend connection, then account."""
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.exchange = None
            if reuse and conn.endpoint in self.plane.table.endpoints:  # not to endpoints being drained
                if conn.paused:
                    conn.set_reading(True)
                self.plane.pool.give_back(conn, self.plane.loop.time())
            else:
                conn.close()
        self._finish(self.status, keep_alive=keep_alive)

    def _fail(self, status: int, message: str) -> None:
        """Answer with the gateway's own error (nothing was sent to the client yet)."""
        keep = self.req.keep_alive and not self.plane.draining
        self.down.write(http1.error_response(status, message, keep, {"route": self.route.route.name}))
        self._finish(status, keep_alive=keep)

    def _abort(self, status: int) -> None:
        """The response head is already out: the only honest signal left is to cut the client connection."""
        self._drop_conn()
        self.flush()
        self.down.abort()
        self._finish(status, keep_alive=False)

    def _drop_conn(self) -> None:
        if self._connect_task is not None:
            self._connect_task.cancel()
            self._connect_task = None
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()

    def _release_endpoint(self) -> None:
        if self.endpoint is not None:
            self.plane.inflight_dec(self.endpoint)
            self.endpoint = None

    def _finish(self, status: int, keep_alive: bool) -> None:
        self.done = True
        self.plane.exchanges.discard(self)
        self.req.exchange = None  # break the request <-> exchange cycle: freed by refcount, not by the GC
        self._release_endpoint()
        plane = self.plane
        now = plane.loop.time()
        plane.stats.record(self.backend.key, status, now - self.req.started, now + plane.wall_offset)
        self.down.finish(self.req, keep_alive)
