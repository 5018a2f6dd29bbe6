"""What runs: environment status and logs from the engine, and direct use of the local engine (like kubectl)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

import yaml
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import Field

from juanie.api.auth import Principal, ProjectAccess, bearer_scheme, require_admin, require_env
from juanie.api.schemas import Strict
from juanie.api.sse import with_heartbeat
from juanie.api.state import AppState, app_state
from juanie.domain.errors import Conflict, Invalid
from juanie.domain.rbac import EnvPermission
from juanie.engines.base import EngineError, EnvRef
from juanie.store import projects as project_store
from juanie.store.events import record

router = APIRouter(tags=["engine"], dependencies=[Depends(bearer_scheme)])
NAMESPACE = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ApplyIn(Strict):
    namespace: str = NAMESPACE
    manifests: list[dict[str, Any]] | None = Field(default=None, max_length=2000)
    yaml: str | None = Field(default=None, max_length=4 * 1024 * 1024, description="multi-document YAML")


class DownIn(Strict):
    stop_data_plane: bool = True


def engine_of(state: AppState) -> Any:
    if state.engine is None:
        raise Conflict("this server runs without an engine (JUANIE_ENGINE=none)")
    return state.engine


def _env_ref(state: AppState, project: str, env: str) -> EnvRef:
    with state.db.session() as s:
        found = project_store.get_environment(s, project_store.get_project(s, project), env)
        return EnvRef(project, env, found.namespace)


def _direct_ref(state: AppState, namespace: str) -> EnvRef:
    """A namespace named directly (administrators): the environment that owns it, so the engine keeps one owner per
    namespace; `direct` only for a namespace no environment holds."""
    with state.db.session() as s:
        owner = project_store.namespace_owner(s, namespace)
    return EnvRef(owner[0], owner[1], namespace) if owner else EnvRef("direct", namespace, namespace)


def status_dict(status: Any) -> dict[str, Any]:
    data = asdict(status)
    data["env"] = {"project": status.env.project, "env": status.env.env, "namespace": status.env.ns}
    return data


@router.get("/api/projects/{project}/environments/{env}/status", summary="What the engine runs for an environment")
async def environment_status(project: str, env: str, access: ProjectAccess = require_env(EnvPermission.read),
                             state: AppState = Depends(app_state)) -> dict[str, Any]:
    engine = engine_of(state)
    ref = await asyncio.to_thread(_env_ref, state, project, env)
    try:
        return status_dict(await engine.status(ref))
    except EngineError as exc:
        raise Conflict(str(exc)) from None


@router.get("/api/projects/{project}/environments/{env}/logs",
            summary="Logs of an environment's processes; `follow=1` streams them (SSE)")
async def environment_logs(project: str, env: str, request: Request,
                           service: str = Query("", max_length=63), version: str = Query("", max_length=64),
                           instance: str = Query("", max_length=128), level: str = Query("", max_length=16),
                           q: str = Query("", max_length=200), since: float = Query(0.0, ge=0),
                           limit: int = Query(500, ge=1, le=10000), follow: bool = False,
                           access: ProjectAccess = require_env(EnvPermission.read),
                           state: AppState = Depends(app_state)) -> Any:
    from juanie.engines.local.logs import LogFilter

    engine = engine_of(state)
    ref = await asyncio.to_thread(_env_ref, state, project, env)
    filters = LogFilter(service=service, version=version, instance=instance, level=level, contains=q)
    try:
        if not follow:
            records = await asyncio.to_thread(engine.read_logs, ref, filters, since, limit)
            return {"items": [r.to_dict() for r in records]}
        lines = engine.follow(ref, filters)
    except EngineError as exc:
        raise Conflict(str(exc)) from None

    async def records() -> AsyncIterator[str]:
        async for rec in lines:
            yield f"data: {json.dumps(rec.to_dict(), default=str)}\n\n"

    async def stream() -> AsyncIterator[bytes]:
        async for text in with_heartbeat(records(), request.is_disconnected):
            yield text.encode()

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _manifests(body: ApplyIn) -> list[dict[str, Any]]:
    if (body.manifests is None) == (body.yaml is None):
        raise Invalid("give exactly one of manifests (a list of objects) or yaml (text)", location="manifests")
    if body.manifests is not None:
        return body.manifests
    try:
        docs = [d for d in yaml.safe_load_all(body.yaml or "") if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise Invalid(f"yaml: {where}{getattr(exc, 'problem', None) or exc}", location="yaml") from None
    out: list[dict[str, Any]] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "List":
            out.extend(doc.get("items") or [])
        elif isinstance(doc, dict):
            out.append(doc)
        else:
            raise Invalid("yaml: every document must be a Kubernetes object (a mapping)", location="yaml")
    return out


@router.post("/api/engine/apply", summary="Run manifests on the local engine (administrators; like kubectl apply)")
async def engine_apply(body: ApplyIn, who: Principal = Depends(require_admin),
                       state: AppState = Depends(app_state)) -> dict[str, Any]:
    engine = engine_of(state)
    manifests = _manifests(body)
    ref = await asyncio.to_thread(_direct_ref, state, body.namespace)
    try:
        await engine.apply(ref, manifests, revision=f"direct:{who.username}")
    except EngineError as exc:
        raise Invalid(str(exc), location="manifests") from None
    await asyncio.to_thread(_record, state, who.username, "engine.applied", body.namespace,
                            {"objects": [f"{m.get('kind')}/{m.get('metadata', {}).get('name')}" for m in manifests]})
    return status_dict(await engine.status(ref))


@router.get("/api/engine/namespaces", summary="Namespaces the local engine runs (administrators)")
async def engine_namespaces(who: Principal = Depends(require_admin),
                            state: AppState = Depends(app_state)) -> dict[str, Any]:
    engine = engine_of(state)
    return {"items": [{"project": r.project, "env": r.env, "namespace": r.ns} for r in engine.env_refs()]}


@router.get("/api/engine/namespaces/{namespace}", summary="Workloads of one namespace (administrators)")
async def engine_namespace(namespace: str, who: Principal = Depends(require_admin),
                           state: AppState = Depends(app_state)) -> dict[str, Any]:
    engine = engine_of(state)
    known = {r.ns: r for r in engine.env_refs()}
    ref = known.get(namespace, EnvRef("direct", namespace, namespace))
    return status_dict(await engine.status(ref))


@router.delete("/api/engine/namespaces/{namespace}", summary="Stop everything in a namespace (administrators)")
async def engine_delete(namespace: str, who: Principal = Depends(require_admin),
                        state: AppState = Depends(app_state)) -> dict[str, Any]:
    engine = engine_of(state)
    known = {r.ns: r for r in engine.env_refs()}
    await engine.delete(known.get(namespace, EnvRef("direct", namespace, namespace)))
    await asyncio.to_thread(_record, state, who.username, "engine.deleted", namespace, {})
    return {"namespace": namespace, "deleted": True}


@router.post("/api/system/down", tags=["system"], summary="Stop this server (and its data plane) — administrators")
async def system_down(body: DownIn | None = None, who: Principal = Depends(require_admin),
                      state: AppState = Depends(app_state)) -> dict[str, Any]:
    state.stop_data_plane = (body or DownIn()).stop_data_plane
    await asyncio.to_thread(_record, state, who.username, "system.down", state.server_id,
                            {"stop_data_plane": state.stop_data_plane})
    asyncio.get_running_loop().call_later(0.2, os.kill, os.getpid(), signal.SIGTERM)
    return {"stopping": True, "stop_data_plane": state.stop_data_plane}


def _record(state: AppState, actor: str, kind: str, subject: str, data: dict[str, Any]) -> None:
    with state.db.session() as s:
        record(s, actor=actor, kind=kind, subject=f"namespace/{subject}", data=data)


def install(app: FastAPI) -> None:
    app.include_router(router)
