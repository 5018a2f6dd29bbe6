"""The admin API: how the local engine changes routes, drains endpoints and reads signals.

A deliberately small HTTP/1.1 JSON server on asyncio streams (it sees a few requests a second, not thousands).
Every path except `GET /healthz` and `GET /metrics` needs `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from juanie.engines.local.gateway import fast
from juanie.engines.local.gateway.fleet import Fleet
from juanie.engines.local.gateway.metrics import GatewayCollector, exposition
from juanie.engines.local.gateway.routes import (
    Route,
    RouteError,
    parse_fault,
    parse_routes,
    parse_weights,
    routes_document,
    with_weights,
)
from juanie.engines.local.gateway.signals import SeriesTotals, WindowCounts, merge_totals

log = logging.getLogger("juanie.gateway.admin")

MAX_BODY = 8 * 1024 * 1024
Response = tuple[int, str, bytes]


class AdminError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _json(status: int, body: Any) -> Response:
    return status, "application/json", json.dumps(body).encode()


class AdminApi:
    """Request handlers over a `Fleet` (every gateway process); `persist` saves a table before a change is
    acknowledged."""

    def __init__(
        self,
        fleet: Fleet,
        token: str,
        persist: Callable[[tuple[Route, ...]], Awaitable[None]],
    ) -> None:
        self.fleet = fleet
        self._token = token.encode()
        self._persist = persist
        self._lock = asyncio.Lock()

    async def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        try:
            return await self._route(method, target, headers, body)
        except AdminError as err:
            return _json(err.status, {"error": {"code": err.code, "message": err.message}})
        except RouteError as err:
            return _json(400, {"error": {"code": "invalid_request", "message": str(err)}})

    async def _route(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        url = urlsplit(target)
        path = url.path
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if method == "GET" and path == "/healthz":
            return _json(200, {"status": "ok", "pid": os.getpid(), "routes": len(self.fleet.routes),
                               "workers": [os.getpid(), *self.fleet.pids()],
                               "fast_path": fast.parse_request is not None})  # fmt: skip
        if method == "GET" and path == "/metrics":
            return 200, "text/plain; version=0.0.4; charset=utf-8", await self._metrics()
        self._authorize(headers)
        if path == "/routes":
            if method == "GET":
                return _json(200, routes_document(self.fleet.routes))
            if method == "PUT":
                routes = parse_routes(_body_json(body))
                await self._commit(routes)
                return _json(200, {"routes": len(routes)})
            raise AdminError(405, "method_not_allowed", f"{method} /routes: use GET or PUT")
        if path.startswith("/routes/") and method == "POST":
            name, _, action = unquote(path[len("/routes/") :]).rpartition("/")
            if action == "weights":
                weights = parse_weights(_body_json(body))
                return await self._update(name, lambda r: with_weights(r, weights))
            if action == "fault":
                fault = parse_fault(_body_json(body))
                return await self._update(name, lambda r: r.model_copy(update={"fault": fault}))
        if method == "GET" and path == "/inflight":
            endpoint = query.get("endpoint")
            if not endpoint:
                raise AdminError(400, "invalid_request", "expected ?endpoint=host:port")
            answers = await self.fleet.ask({"op": "inflight", "endpoint": endpoint})
            return _json(200, {"endpoint": endpoint, "inflight": sum(int(a["inflight"]) for a in answers)})
        if method == "GET" and path == "/signals":
            return _json(200, await self._signals(query))
        raise AdminError(404, "not_found", f"{method} {path}: no such admin endpoint")

    def _authorize(self, headers: dict[str, str]) -> None:
        given = headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._token):
            raise AdminError(401, "unauthorized", "expected header 'Authorization: Bearer <token>' (see admin-token)")

    async def _commit(self, routes: tuple[Route, ...]) -> None:
        async with self._lock:
            await self.fleet.set_routes(routes)
            await self._persist(routes)

    async def _update(self, name: str, change: Callable[[Route], Route]) -> Response:
        async with self._lock:
            routes = self.fleet.routes
            if not any(r.name == name for r in routes):
                raise AdminError(404, "not_found", f"no route named {name!r}")
            updated = tuple(change(r) if r.name == name else r for r in routes)
            await self.fleet.set_routes(updated)
            await self._persist(updated)
        return _json(200, {"route": next(r for r in updated if r.name == name).model_dump(mode="json")})

    async def _metrics(self) -> bytes:
        """The exposition of every process's counters added up (one gateway, however many processes)."""
        answers = await self.fleet.ask({"op": "totals"})
        totals = merge_totals([[SeriesTotals.from_wire(t) for t in a["totals"]] for a in answers])
        errors: dict[tuple[str, str, str], int] = {}
        for answer in answers:
            for env, service, reason, n in answer["upstream_errors"]:
                errors[(env, service, reason)] = errors.get((env, service, reason), 0) + int(n)
        inflight = sum(int(a["active"]) for a in answers)
        return exposition(GatewayCollector(totals, errors, inflight))

    async def _signals(self, query: dict[str, str]) -> dict[str, Any]:
        env, service = query.get("env"), query.get("service")
        if not env or not service:
            raise AdminError(400, "invalid_request", "expected ?env=...&service=...&window=seconds")
        try:
            window = float(query.get("window", "60"))
        except ValueError:
            raise AdminError(400, "invalid_request", f"window: expected seconds, got {query['window']!r}") from None
        if not 0 < window <= 900:
            raise AdminError(400, "invalid_request", f"window: expected 0 < seconds <= 900, got {window:g}")
        message = {"op": "window", "env": env, "service": service, "window": window, "now": time.time()}
        summed: dict[str, WindowCounts] = {}
        for answer in await self.fleet.ask(message):
            for version, wire in answer["versions"].items():
                counts = WindowCounts.from_wire(wire)
                summed[version] = summed[version].add(counts) if version in summed else counts
        versions = {v: summed[v].signals().to_json() for v in sorted(summed)}
        return {"env": env, "service": service, "window": window, "versions": versions}


def _body_json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as err:
        raise RouteError(f"request body is not valid JSON: {err}") from None


_REASON = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           413: "Payload Too Large", 500: "Internal Server Error"}  # fmt: skip


async def serve_connection(api: AdminApi, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer requests on one admin connection until the client closes it or asks to."""
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                await _write(
                    writer,
                    _json(400, {"error": {"code": "bad_request", "message": "bad request line"}}),
                    False,
                )
                return
            method, target, version = parts
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            length_text = headers.get("content-length", "0")
            if not length_text.isdigit() or int(length_text) > MAX_BODY:
                await _write(writer, _json(413, {"error": {"code": "bad_length", "message": "body too large"}}), False)
                return
            if int(length_text) and headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits a second for this otherwise
            body = await reader.readexactly(int(length_text)) if int(length_text) else b""
            keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
            try:
                response = await api.handle(method, target, headers, body)
            except Exception:  # a bug must not take the admin API down with it
                log.exception("admin request %s %s failed", method, urlsplit(target).path)
                response = _json(500, {"error": {"code": "internal", "message": "internal error, see gateway log"}})
            await _write(writer, response, keep)
            if not keep:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def _write(writer: asyncio.StreamWriter, response: Response, keep: bool) -> None:
    status, content_type, body = response
    close = "" if keep else "connection: close\r\n"
    head = (
        f"HTTP/1.1 {status} {_REASON.get(status, 'Error')}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\n{close}\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
