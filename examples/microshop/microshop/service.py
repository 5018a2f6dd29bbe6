"""What every microshop service has in common: the probe and metrics endpoints, error bodies, lifespan.

A service module declares its schema, its routes and its readiness checks; :class:`Service` wraps them into a
Starlette app with ``/``, ``/health``, ``/ready``, ``/metrics`` and the observability middleware, so the four
services behave identically where the platform looks at them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from microshop.config import Settings
from microshop.db import ConstraintViolation, Database, DatabaseUnavailable
from microshop.metrics import ServiceMetrics
from microshop.middleware import ObservabilityMiddleware
from microshop.validation import ApiError, parse_json_object

# A readiness check returns None when fine, or a short sentence saying what is missing.
ReadinessCheck = Callable[[], Awaitable[str | None]]
Hook = Callable[[], Awaitable[None]]


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or an :class:`ApiError` explaining what was wrong."""
    return parse_json_object(await request.body())


class Service:
    """The shared skeleton of one microshop service: settings, logger, metrics, database and checks."""

    def __init__(self, settings: Settings, schema: Sequence[str]) -> None:
        self.settings = settings
        self.logger = logging.getLogger(f"microshop.{settings.service}")
        self.metrics = ServiceMetrics(settings.service, settings.version)
        self.db = Database(settings.database_url, schema, self.logger)
        self.checks: list[ReadinessCheck] = [self._database_check]
        self.on_startup: list[Hook] = []
        self.on_shutdown: list[Hook] = []
        self.index_extra: dict[str, Any] = {}

    async def _database_check(self) -> str | None:
        up = await self.db.ping()
        self.metrics.dependency_up.labels(self.settings.service, "database").set(1 if up else 0)
        return None if up else "database is unreachable"

    async def readiness_problems(self) -> list[str]:
        problems = []
        for check in self.checks:
            problem = await check()
            if problem:
                problems.append(problem)
        return problems

    # -- the endpoints every service shares ------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return JSONResponse({"service": self.settings.service, "version": self.settings.version, **self.index_extra})

    async def health(self, request: Request) -> Response:
        """Liveness: the process serves HTTP. It touches no dependency: a slow database must not kill it."""
        return JSONResponse({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        problems = await self.readiness_problems()
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics_endpoint(self, request: Request) -> Response:
        body, content_type = self.metrics.exposition()
        return Response(body, media_type=content_type)

    # -- assembly --------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        s = self.settings
        self.logger.info("starting %s %s", s.service, s.version)
        await self.db.connect()
        for hook in self.on_startup:
            await hook()
        problems = await self.readiness_problems()
        if problems:
            self.logger.warning("not ready yet: %s", "; ".join(problems))
        try:
            yield
        finally:
            self.logger.info("shutting down %s", s.service)
            for hook in self.on_shutdown:
                try:
                    await hook()
                except Exception:
                    self.logger.exception("error during shutdown")
            self.db.close()

    def app(
        self, routes: Sequence[BaseRoute], *, index: Callable[[Request], Awaitable[Response]] | None = None
    ) -> Starlette:
        """The Starlette app serving ``routes`` plus the shared endpoints."""
        all_routes: list[BaseRoute] = [
            Route("/", index or self.index, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
            Route("/ready", self.ready, methods=["GET"]),
            Route("/metrics", self.metrics_endpoint, methods=["GET"]),
            *routes,
        ]

        async def api_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, ApiError)
            return error_response(exc.status, exc.code, exc.message)

        async def unavailable(request: Request, exc: Exception) -> Response:
            self.logger.warning("answering 503: %s", exc)
            return error_response(503, "database_unavailable", str(exc))

        async def conflict(request: Request, exc: Exception) -> Response:
            return error_response(409, "conflict", f"the request conflicts with existing data: {exc}")

        async def http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
            message = f"{request.method} {request.url.path}: {exc.detail}"
            return error_response(exc.status_code, code, message)

        middleware = [
            Middleware(
                ObservabilityMiddleware,
                routes=all_routes,
                metrics=self.metrics,
                version=self.settings.version,
                logger=self.logger,
            )
        ]
        return Starlette(
            routes=all_routes,
            middleware=middleware,
            exception_handlers={
                ApiError: api_error,
                DatabaseUnavailable: unavailable,
                ConstraintViolation: conflict,
                HTTPException: http_error,
            },
            lifespan=self._lifespan,
        )
