"""The Juanie server: one FastAPI app serving the API, with the controllers running beside it on the leader."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from juanie import __version__
from juanie.api import errors
from juanie.api.auth import AuthMiddleware, bearer_scheme
from juanie.api.body_limit import BodyLimitMiddleware
from juanie.api.bootstrap import ensure_admin
from juanie.api.routes import accounts, events, projects, secrets, system
from juanie.api.routes import delivery as delivery_routes
from juanie.api.routes import engine as engine_routes
from juanie.api.routes import pipelines as pipelines_routes
from juanie.api.state import AppState
from juanie.controllers.delivery import DeliveryService, auto_deploy
from juanie.controllers.engine_setup import start_engine, stop_gateway
from juanie.controllers.environments import environment_controller
from juanie.controllers.gitops import GitOpsRepos
from juanie.controllers.pipelines import PipelineContext, PipelineService
from juanie.controllers.runner import ControllerRunner
from juanie.controllers.sources import sources_controller
from juanie.controllers.specs import SpecCache
from juanie.sandbox import Sandbox
from juanie.settings import Settings
from juanie.store.crypto import SecretBox, load_or_create_key
from juanie.store.db import Database
from juanie.telemetry import ServerMetrics

log = logging.getLogger("juanie.server")


class MetricsMiddleware:
    """Counts and times every request by its route *template*, so label values stay bounded."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def capture(message: dict) -> None:  # type: ignore[type-arg]
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.http_requests.labels(scope["method"], template, str(status["code"])).inc()
            self.metrics.http_duration.labels(scope["method"], template).observe(
                time.perf_counter() - started
            )


def _mount_optional_faces(app: FastAPI) -> None:
    """Parts of the server that live in their own packages mount themselves (`install(app)`) when present."""
    import importlib

    for module_name in ("juanie.web.app", "juanie.api.routes.observe"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            continue
        module.install(app)


def create_app(settings: Settings) -> FastAPI:
    metrics = ServerMetrics()
    server_id = settings.server_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Request handlers that touch the database run in threads. A few threads serve more requests than many: with
        # dozens, every thread and the event loop queue for the GIL in turn (a convoy) and throughput falls.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        state: AppState = app.state.juanie
        state.db.migrate()
        if ensure_admin(state.db, settings.admin_token_file):
            log.info("created the admin user; its token is in %s", settings.admin_token_file)
        await asyncio.to_thread(state.sandbox.log_start)
        state.engine = await start_engine(settings, state.db, state.box, state.sandbox)
        state.ready = True
        if settings.run_controllers:
            await state.runner.start()
        try:
            yield
        finally:
            state.ready = False
            await state.runner.stop()
            if state.engine is not None:
                await state.engine.stop(keep_running=not state.stop_data_plane)
                if state.stop_data_plane:
                    await asyncio.to_thread(stop_gateway, settings.data_dir / "gateway")
            state.db.dispose()

    app = FastAPI(
        title="Juanie",
        version=__version__,
        description="From a git commit to production, kept healthy. Every /api route needs a bearer token.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    db = Database(settings.database_url)
    box = SecretBox(load_or_create_key(settings.secret_key, settings.secret_key_file))
    runner = ControllerRunner(db, server_id, lease_seconds=settings.lease_seconds, metrics=metrics)
    runner.register(environment_controller(db, settings.data_dir, actor=f"controller:environments@{server_id}"))
    sandbox = Sandbox.from_env(hidden=(settings.data_dir,))
    context = PipelineContext(settings.data_dir, sandbox=sandbox, local_repo_roots=settings.local_repo_roots)
    pipelines = PipelineService(db, box, context,
                                actor=f"controller:pipelines@{server_id}",
                                on_release=lambda project, release: auto_deploy(db, runner, project, release,
                                                                               f"controller:pipelines@{server_id}"))
    runner.register(pipelines.controller())
    runner.register(sources_controller(db, box, pipelines.ctx, f"controller:sources@{server_id}", runner.enqueue))
    app.state.juanie = AppState(settings=settings, db=db, box=box, metrics=metrics, runner=runner,
                                server_id=server_id, pipelines=pipelines,
                                gitops=GitOpsRepos(settings.data_dir, local_repo_roots=settings.local_repo_roots),
                                specs=SpecCache(db, box, pipelines.ctx), sandbox=sandbox)
    state = app.state.juanie
    delivery = DeliveryService(db, state.specs, state.gitops, lambda: state.engine,
                               actor=f"controller:delivery@{server_id}")
    runner.register(delivery.controller())

    errors.install(app)
    app.include_router(system.router)
    secured = [Depends(bearer_scheme)]
    for module in (accounts, projects, secrets, events):
        app.include_router(module.router, dependencies=secured)
    pipelines_routes.install(app)
    engine_routes.install(app)
    delivery_routes.install(app)
    _mount_optional_faces(app)
    app.add_middleware(AuthMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       webhook_max_bytes=settings.max_webhook_body_bytes)  # fmt: skip
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
