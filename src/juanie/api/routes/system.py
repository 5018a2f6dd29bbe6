"""Health, readiness, the server's own metrics, and who-am-I."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from juanie import __version__
from juanie.api.auth import Principal, principal
from juanie.api.state import AppState, app_state
from juanie.controllers.runner import LEASE_NAME
from juanie.store import leases

router = APIRouter()


@router.get("/healthz", tags=["system"], summary="Liveness: the process serves HTTP")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["system"], summary="Readiness: migrated and the database answers")
def readyz(state: AppState = Depends(app_state)) -> JSONResponse:
    try:
        with state.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        db_ok = True
    except Exception:
        db_ok = False
    ready = state.ready and db_ok
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "database": db_ok, "migrated": state.ready},
        status_code=200 if ready else 503,
    )


@router.get(
    "/metrics",
    tags=["system"],
    summary="The server's own metrics (Prometheus text format)",
    response_class=Response,
)
def metrics(state: AppState = Depends(app_state)) -> Response:
    pool = state.db.engine.pool
    for name in ("checkedin", "checkedout", "overflow"):
        fn = getattr(pool, name, None)
        if callable(fn):
            state.metrics.db_pool.labels(name).set(fn())
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/system", tags=["system"], summary="This server: version, leadership, controllers")
def system(state: AppState = Depends(app_state)) -> dict[str, object]:
    lease = leases.current(state.db.engine, LEASE_NAME)
    return {
        "version": __version__,
        "server_id": state.server_id,
        "leader": state.runner.is_leader,
        "lease_holder": lease.holder if lease else None,
        "controllers": sorted(state.runner.controllers),
        "database": state.db.dialect,
        "sandbox": state.sandbox.status() if state.sandbox is not None else None,
    }


@router.get("/api/me", tags=["auth"], summary="The caller")
def me(request: Request) -> dict[str, object]:
    who: Principal = principal(request)
    return {"username": who.username, "is_admin": who.is_admin, "via": who.via}
