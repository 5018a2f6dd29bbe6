"""The ASGI middleware every service runs behind: trace id, version header, metrics and the access log.

It is plain ASGI rather than Starlette's ``BaseHTTPMiddleware`` so that it adds no task per request and sees
the real status code and the moment the last byte leaves, which is what a latency histogram should measure.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from microshop.logs import accept_trace_id, log_fields, reset_trace_id, set_trace_id
from microshop.metrics import ServiceMetrics

UNMATCHED_PATH = "<unmatched>"
# Probe and scrape traffic arrives every few seconds; its access lines are only interesting when debugging.
_QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The route path (``/users/{id}``) that serves ``scope``, so that metric labels stay bounded."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return getattr(route, "path", UNMATCHED_PATH)
        if match is Match.PARTIAL and partial is None:
            partial = getattr(route, "path", UNMATCHED_PATH)
    return partial or UNMATCHED_PATH


class ObservabilityMiddleware:
    """Wrap an app so every HTTP response is traced, versioned, counted, timed and logged."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        metrics: ServiceMetrics,
        version: str,
        logger: logging.Logger,
    ) -> None:
        self.app = app
        self.routes = routes
        self.metrics = metrics
        self.version = version.encode("latin-1", "replace")
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        trace_id = accept_trace_id(headers.get(b"x-trace-id", b"").decode("latin-1"))
        token = set_trace_id(trace_id)
        status = 500
        response_started = False
        extra_headers = [(b"x-service-version", self.version), (b"x-trace-id", trace_id.encode())]

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message = {**message, "headers": [*message.get("headers", []), *extra_headers]}
            await send(message)

        self.metrics.in_flight.labels(self.metrics.service).inc()
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            status = 500
            self.logger.exception("unhandled error while serving %s %s", scope["method"], scope["path"])
            if not response_started:
                body = json.dumps({"error": {"code": "internal", "message": "internal server error"}}).encode()
                await send_wrapper(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", b"%d" % len(body)),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.in_flight.labels(self.metrics.service).dec()
            path = route_template(self.routes, scope)
            self.metrics.observe_request(scope["method"], path, status, elapsed)
            level = logging.DEBUG if scope["path"] in _QUIET_PATHS and status < 500 else logging.INFO
            self.logger.log(
                level,
                "%s %s %d",
                scope["method"],
                scope["path"],
                status,
                extra=log_fields(
                    method=scope["method"],
                    path=scope["path"],
                    route=path,
                    status=status,
                    duration=round(elapsed, 6),
                ),
            )
            reset_trace_id(token)
