"""Alerts, silences and the Alertmanager receiver; ``install`` mounts every observe route and starts the service.

Reading alerts needs ``viewer`` on the project; creating or expiring a silence and posting alerts from an
Alertmanager need ``developer`` (the people who are paged); channels need ``maintainer`` (see observe_metrics).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import Field
from sqlalchemy import select

from juanie.api.auth import Principal, bearer_scheme, principal
from juanie.api.schemas import Strict
from juanie.api.state import AppState, app_state
from juanie.controllers import observe_records as records
from juanie.controllers.observe import ConfigError, ObserveConfig, ObserveService, own_ports
from juanie.domain.errors import Forbidden, Invalid, NotFound
from juanie.domain.rbac import Role
from juanie.egress import EgressConfigError, EgressPolicy
from juanie.observe.alerts.alertmanager_receiver import AlertmanagerPayloadError, parse_alertmanager_webhook
from juanie.observe.alerts.silences import Silence, SilenceError
from juanie.observe.durations import DurationError, parse_duration
from juanie.observe.matchers import MatcherError, parse_matcher, parse_matchers, split_words
from juanie.store import accounts
from juanie.store.models import Project, User

router = APIRouter(tags=["alerts"], dependencies=[Depends(bearer_scheme)])
STATES = ("pending", "firing", "resolved")
MAX_HOOK_BYTES = 4 * 1024 * 1024


def observe_service(request: Request) -> ObserveService:
    return request.app.state.observe


def check_project(state: AppState, who: Principal, project: str, minimum: Role) -> Project:
    """The caller must hold ``minimum`` on ``project``; a non-member learns nothing about whether it exists."""
    with state.db.session() as s:
        found = s.scalar(select(Project).where(Project.name == project))
        user = s.get(User, who.user_id)
        role = accounts.project_role(s, user, found) if found is not None and user is not None else None
        if found is None or (role is None and not who.is_admin):
            raise NotFound(f"project {project!r} not found", location="project")
        if not who.is_admin and (role is None or role < minimum):
            raise Forbidden(f"this needs the {minimum.name} role on project {project!r}; you are {role.name}")
        return found


def readable_projects(state: AppState, who: Principal) -> list[str] | None:
    """Projects the caller may read; None for a site administrator (all)."""
    with state.db.session() as s:
        user = s.get(User, who.user_id)
        visible = accounts.visible_projects(s, user) if user is not None else frozenset()
        return None if visible is None else sorted(visible)


def scope(state: AppState, who: Principal, project: str | None) -> list[str] | None:
    if project:
        check_project(state, who, project, Role.viewer)
        return [project]
    return readable_projects(state, who)


def parse_time(value: str, location: str) -> float:
    """Unix seconds or RFC 3339, as Prometheus's API takes them."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(
            f"{location}: expected unix seconds or an RFC 3339 time, got {value!r}", location=location
        ) from None
    if parsed.tzinfo is None:
        raise Invalid(f"{location}: time {value!r} has no timezone (add Z or +00:00)", location=location)
    return parsed.timestamp()


# -- alerts --------------------------------------------------------------------------------------------------
@router.get("/api/alerts", summary="Alerts (pending, firing, resolved), newest first; filter by labels")
async def list_alerts(
    request: Request,
    project: str | None = Query(None, max_length=128),
    state_filter: str = Query("", alias="state", max_length=64, description="comma-separated: pending,firing,resolved"),
    env: str = Query("", max_length=128),
    service: str = Query("", max_length=128),
    severity: str = Query("", max_length=8),
    alertname: str = Query("", max_length=128),
    source: str = Query("", max_length=16),
    limit: int = Query(200, ge=1, le=2000),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    who = principal(request)
    states = [s.strip() for s in state_filter.split(",") if s.strip()]
    unknown = [s for s in states if s not in STATES]
    if unknown:
        raise Invalid(f"state: unknown state {unknown[0]!r}; expected {', '.join(STATES)}", location="state")
    projects = await asyncio.to_thread(scope, state, who, project)
    filters = {"env": env, "service": service, "severity": severity, "alertname": alertname, "source": source}
    items = await asyncio.to_thread(records.list_episodes, state.db, projects, states, filters, limit)
    return {"items": items}


@router.get("/api/alerts/rules", summary="A project's alert rules, what each currently matches, and rule errors")
async def alert_rules(
    request: Request, project: str = Query(..., max_length=128), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    await asyncio.to_thread(check_project, state, principal(request), project, Role.viewer)
    alerting = observe_service(request).projects.get(project)
    if alerting is None:
        return {"project": project, "loaded": False, "rules": [], "errors": {}}
    active: dict[str, list[dict[str, Any]]] = {}
    for a in alerting.state.alerts.values():
        active.setdefault(a.rule, []).append({"labels": dict(a.labels), "state": a.state, "value": a.value,
                                               "active_at": a.active_at})  # fmt: skip
    rules = [
        {"name": r.name, "kind": "log" if not hasattr(r, "expr") else "metric", "expr": getattr(r, "expr", None),
         "match": getattr(r, "match", None), "for_seconds": r.for_seconds, "severity": r.severity,
         "labels": dict(r.labels), "annotations": dict(r.annotations), "active": active.get(r.name, [])}
        for r in alerting.rules.rules
    ]  # fmt: skip
    return {"project": project, "loaded": True, "rules": rules, "errors": alerting.rule_errors()}


# -- silences ------------------------------------------------------------------------------------------------
class SilenceIn(Strict):
    project: str = Field(min_length=1, max_length=128)
    matchers: list[str] | str = Field(description='["alertname=HighErrorRate", "service=payment"] or one string')
    starts_at: str | None = Field(default=None, description="unix seconds or RFC 3339; default now")
    ends_at: str | None = None
    duration: str | None = Field(default=None, description="instead of ends_at: 2h, 30m, 1d")
    comment: str = Field(min_length=1, max_length=2000)


def _matchers(raw: list[str] | str) -> tuple[Any, ...]:
    try:
        if isinstance(raw, str):
            text = raw.strip()
            words = [text] if text.startswith("{") else split_words(text)
            return tuple(m for word in words for m in parse_matchers(word))
        return tuple(parse_matcher(m) for m in raw)
    except MatcherError as exc:
        raise Invalid(f"matchers: {exc}", location="matchers") from None


def build_silence(body: SilenceIn, created_by: str, now: float, silence_id: str) -> Silence:
    starts = parse_time(body.starts_at, "starts_at") if body.starts_at else now
    if (body.ends_at is None) == (body.duration is None):
        raise Invalid("give exactly one of ends_at or duration (e.g. 2h)", location="duration")
    if body.duration is not None:
        try:
            ends = starts + parse_duration(body.duration)
        except DurationError as exc:
            raise Invalid(f"duration: {exc}", location="duration") from None
    else:
        ends = parse_time(body.ends_at or "", "ends_at")
    try:
        return Silence(silence_id, _matchers(body.matchers), starts, ends, created_by, body.comment)
    except SilenceError as exc:
        raise Invalid(str(exc).replace(f"silence {silence_id}: ", ""), location="matchers") from None


@router.get("/api/silences", summary="Silences that are pending or active (expired ones with expired=1)")
async def list_silences(
    request: Request,
    project: str | None = Query(None, max_length=128),
    expired: bool = False,
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    projects = await asyncio.to_thread(scope, state, principal(request), project)
    items = await asyncio.to_thread(records.list_silences, state.db, projects, time.time(), expired)
    return {"items": items}


@router.post("/api/silences", status_code=201, summary="Create a silence (matchers, window, comment)")
async def create_silence(request: Request, body: SilenceIn, state: AppState = Depends(app_state)) -> dict[str, Any]:
    who = principal(request)
    await asyncio.to_thread(check_project, state, who, body.project, Role.developer)
    now = time.time()
    silence = build_silence(body, who.username, now, records.new_silence_id())
    return await asyncio.to_thread(records.create_silence, state.db, body.project, silence, now)


@router.delete("/api/silences/{silence_id}", summary="Expire a silence now")
async def expire_silence(request: Request, silence_id: str, state: AppState = Depends(app_state)) -> dict[str, Any]:
    who = principal(request)
    found = await asyncio.to_thread(records.get_silence, state.db, silence_id)
    if found.project:
        await asyncio.to_thread(check_project, state, who, found.project, Role.developer)
    elif not who.is_admin:
        raise Forbidden("only a site administrator may expire a global silence")
    return await asyncio.to_thread(records.expire_silence, state.db, silence_id, who.username, time.time())


# -- the Alertmanager receiver -------------------------------------------------------------------------------
@router.post("/api/hooks/alertmanager", tags=["hooks"], summary="Alerts from an Alertmanager (webhook, version 4)")
async def alertmanager_hook(
    request: Request, project: str | None = Query(None, max_length=128), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    who = principal(request)
    raw = await request.body()
    if len(raw) > MAX_HOOK_BYTES:
        raise Invalid(f"payload: larger than {MAX_HOOK_BYTES} bytes", location="payload")
    try:
        import json

        payload = json.loads(raw or b"null")
    except ValueError as exc:
        raise Invalid(f"payload: not valid JSON: {exc}", location="payload") from None
    try:
        alerts = parse_alertmanager_webhook(payload)
    except AlertmanagerPayloadError as exc:
        raise Invalid(str(exc), location="payload") from None
    by_project: dict[str, list[Any]] = {}
    for index, alert in enumerate(alerts):
        owner = alert.labels.get("project") or project
        if not owner:
            raise Invalid(
                f"payload.alerts[{index}]: no 'project' label; add one or call with ?project=NAME", location="project"
            )
        by_project.setdefault(owner, []).append(alert)
    service = observe_service(request)
    received = 0
    for name, group in by_project.items():
        found = await asyncio.to_thread(check_project, state, who, name, Role.developer)
        routed = await service.receive_external(name, found.team or "", group, f"alertmanager:{who.username}")
        received += len(routed)
    return {"received": received, "projects": sorted(by_project)}


# -- installation --------------------------------------------------------------------------------------------
def install(app: FastAPI) -> None:
    """Create the observe service, run it on the leader, keep its metrics across restarts, mount the routes."""
    from juanie.api.routes import observe_metrics

    state: AppState = app.state.juanie
    try:
        config = ObserveConfig.from_env(default_url=state.settings.url)
        egress = EgressPolicy.from_env(own_ports=own_ports(state.settings))
    except (ConfigError, EgressConfigError) as exc:
        raise SystemExit(f"juanie: {exc}") from None
    service = ObserveService(state, config, egress)
    service.load_snapshot()
    app.state.observe = service
    state.runner.register(service.controller())
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        try:
            async with inner(application) as value:
                yield value
        finally:
            await service.aclose()
            await asyncio.to_thread(service.save_snapshot)

    app.router.lifespan_context = lifespan
    app.include_router(router)
    observe_metrics.install(app)
