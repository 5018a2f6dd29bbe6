"""The data plane: what requests share, and the per-request routing decision.

`DataPlane` holds everything requests share (the current `RouteTable`, the connection pool, in-flight counts
per endpoint, the traffic statistics, the client connections and their limits). Client connections are
`downstream.DownstreamProtocol`s, which parse requests and answer them in order; the proxying itself is an
`exchange.Exchange`.
"""

from __future__ import annotations

import asyncio
import random
import time

from juanie.engines.local.gateway import http1
from juanie.engines.local.gateway.downstream import DownstreamProtocol, Request
from juanie.engines.local.gateway.exchange import Exchange
from juanie.engines.local.gateway.limits import SWEEP_SECONDS, ConnectionLimits
from juanie.engines.local.gateway.signals import TrafficStats
from juanie.engines.local.gateway.table import CompiledRoute, RouteTable, choose_backend, forced_track
from juanie.engines.local.gateway.upstream import ConnectionPool


class DataPlane:
    """Shared state of the proxy. Lives on one event loop; nothing here is thread-safe or needs to be."""

    def __init__(self, loop: asyncio.AbstractEventLoop, table: RouteTable | None = None,
                 limits: ConnectionLimits | None = None) -> None:  # fmt: skip
        self.loop = loop
        self.table = table or RouteTable()
        self.limits = limits or ConnectionLimits()
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

    def check_connections(self, now: float) -> None:
        """Close client connections that waited too long for a request head, or idle (see `limits`)."""
        for conn in list(self.connections):
            conn.check_wait(now)

    def housekeep(self, tick: int) -> None:
        """Called every 0.1 s: request timeouts each time, idle connections (both sides) every second, stale
        series every minute."""
        self.check_timeouts()
        if tick % round(SWEEP_SECONDS / 0.1) == 0:
            self.pool.sweep(self.loop.time())
            self.check_connections(self.loop.time())
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
