"""Metric queries (Prometheus-shaped), log search, notification channels, observe settings and service discovery.

``/api/metrics/query`` and ``/api/metrics/query_range`` answer exactly like Prometheus's HTTP API
(``{"status": "success", "data": {"resultType", "result"}}``), from the embedded store or, when the project
configured one, from its Prometheus — always limited to the project's series (``project="<name>"`` is enforced in
every selector); a query across projects needs an administrator. URLs the server will connect to (channels, the
Prometheus URL) are checked against ``juanie.egress`` when they are saved.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import Field

from juanie.api.auth import ProjectAccess, bearer_scheme, principal, require
from juanie.api.routes.observe import check_project, observe_service, parse_time
from juanie.api.schemas import Strict
from juanie.api.state import AppState, app_state
from juanie.controllers import observe_records as records
from juanie.controllers.observe_channels import ChannelError, ChannelSpec, validate_channel
from juanie.domain.errors import Conflict, Forbidden, Invalid
from juanie.domain.rbac import Role
from juanie.egress import EgressPolicy, EgressRefused, endpoint_url
from juanie.observe.alerts.config import RuleConfigError, rules_from_config
from juanie.observe.alerts.dispatcher import Notification
from juanie.observe.alerts.model import Alert
from juanie.observe.durations import DurationError, parse_duration
from juanie.observe.metrics.prometheus_backend import PrometheusError
from juanie.observe.metrics.promql import PromQLError
from juanie.observe.metrics.query import QueryError

router = APIRouter(tags=["observe"], dependencies=[Depends(bearer_scheme)])
_QUERY_ERRORS = (PromQLError, QueryError, PrometheusError, ValueError)


def _step(value: str) -> float:
    try:
        step = parse_duration(value) if not value.replace(".", "", 1).isdigit() else float(value)
    except DurationError as exc:
        raise Invalid(f"step: {exc}", location="step") from None
    if step <= 0:
        raise Invalid("step: expected a positive duration such as 15s", location="step")
    return step


async def _backend(request: Request, state: AppState, project: str | None) -> Any:
    who = principal(request)
    if project:
        await asyncio.to_thread(check_project, state, who, project, Role.viewer)
    elif not who.is_admin:
        raise Invalid("project: required (only administrators may query across projects)", location="project")
    return await asyncio.to_thread(observe_service(request).backend_for, project)


@router.get("/api/metrics/query", summary="Instant query (PromQL subset, or the project's Prometheus)")
async def metrics_query(
    request: Request,
    query: str = Query(..., min_length=1, max_length=4000),
    at: str | None = Query(None, alias="time"),
    project: str | None = Query(None, max_length=128),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    backend = await _backend(request, state, project)
    when = parse_time(at, "time") if at else time.time()
    try:
        result = await asyncio.to_thread(backend.query, query, when)
    except _QUERY_ERRORS as exc:
        raise Invalid(str(exc), location="query") from None
    return {"status": "success", "data": result.to_dict()}


@router.get("/api/metrics/query_range", summary="Range query (PromQL subset, or the project's Prometheus)")
async def metrics_query_range(
    request: Request,
    query: str = Query(..., min_length=1, max_length=4000),
    start: str = Query(...),
    end: str = Query(...),
    step: str = Query("15s", max_length=16),
    project: str | None = Query(None, max_length=128),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    backend = await _backend(request, state, project)
    begin, finish, every = parse_time(start, "start"), parse_time(end, "end"), _step(step)
    if finish < begin:
        raise Invalid("end: must not be before start", location="end")
    try:
        result = await asyncio.to_thread(backend.query_range, query, begin, finish, every)
    except _QUERY_ERRORS as exc:
        raise Invalid(str(exc), location="query") from None
    return {"status": "success", "data": result.to_dict()}


@router.get("/api/observe/status", summary="The metric store and its targets (administrators)")
async def observe_status(request: Request) -> dict[str, Any]:
    if not principal(request).is_admin:
        raise Forbidden("this needs a site administrator")
    service = observe_service(request)
    stats = service.collector.stats
    targets = [
        {"job": t.target.job, "url": t.target.url, "labels": t.target.target_labels, "up": t.up,
         "last_error": t.last_error, "last_scrape": t.last_scrape}
        for t in stats.targets.values()
    ]  # fmt: skip
    return {"series": service.store.series_count(), "memory_bytes": service.store.memory_bytes(),
            "dropped_samples": service.store.dropped_samples, "refused_series": stats.refused_series,
            "rounds": stats.rounds, "gateway_error": stats.gateway_error, "targets": targets,
            "projects": {p: a.rule_errors() for p, a in service.projects.items()}}  # fmt: skip


# -- logs ----------------------------------------------------------------------------------------------------
@router.get("/api/logs", summary="Search captured logs by labels, level, text and time range")
async def search_logs(
    request: Request,
    project: str = Query(..., max_length=128),
    env: str = Query("", max_length=128),
    service: str = Query("", max_length=128),
    level: str = Query("", max_length=16),
    q: str = Query("", max_length=200),
    since: str | None = Query(None),
    until: str | None = Query(None),
    limit: int = Query(500, ge=1, le=10_000),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    await asyncio.to_thread(check_project, state, principal(request), project, Role.viewer)
    if level and level not in ("debug", "info", "warning", "error", "critical"):
        raise Invalid(f"level: expected debug, info, warning, error or critical, got {level!r}", location="level")
    engine = state.engine
    if engine is None or not hasattr(engine, "read_logs"):
        raise Conflict("logs are searched on the local engine; this server runs without one")
    start = _since(since) if since else 0.0
    stop = parse_time(until, "until") if until else float("inf")
    from juanie.engines.base import EnvRef
    from juanie.engines.local.logs import LogFilter

    known = await asyncio.to_thread(records.known_namespaces, state.db)
    namespaces = [ns for ns, (p, e) in known.items() if p == project and (not env or env in (e, ns))]
    flt = LogFilter(service=service, level=level, contains=q)
    items: list[dict[str, Any]] = []
    for ns in namespaces:
        env_name = known[ns][1]
        found = await asyncio.to_thread(engine.read_logs, EnvRef(project, env_name, ns), flt, start, limit)
        items.extend({**r.to_dict(), "namespace": ns} for r in found if r.ts <= stop)
    items.sort(key=lambda r: r["ts"])
    return {"items": items[-limit:]}


def _since(value: str) -> float:
    """``since`` takes a time or a look-back like ``15m``."""
    if value and value[-1] in "smhdw" and value[0].isdigit():
        try:
            return time.time() - parse_duration(value)
        except DurationError:
            pass
    return parse_time(value, "since")


# -- channels ------------------------------------------------------------------------------------------------
class ChannelIn(Strict):
    kind: str = Field(description="webhook, slack, dingtalk, wecom or email")
    url: str | None = Field(default=None, max_length=2000)
    secret: str | None = Field(default=None, max_length=512)
    host: str | None = Field(default=None, max_length=255)
    port: int | None = None
    sender: str | None = Field(default=None, max_length=255)
    recipients: list[str] | None = Field(default=None, max_length=50)
    username: str | None = Field(default=None, max_length=255)
    password: str | None = Field(default=None, max_length=512)
    starttls: bool = False
    send_resolved: bool = True


def _validated(name: str, body: ChannelIn) -> Any:
    data = {k: v for k, v in body.model_dump().items() if v is not None}
    try:
        return validate_channel({**data, "name": name})
    except ChannelError as exc:
        raise Invalid(str(exc), location=exc.location) from None


def _reachable(egress: EgressPolicy, spec: ChannelSpec) -> None:
    """A channel may only point where the server may connect for a user (blocking: it resolves the host)."""
    try:
        if "url" in spec.hidden:
            egress.check_url(spec.hidden["url"])
        elif not egress.listed(endpoint_url("smtp", spec.shown["host"], spec.shown["port"])):
            egress.check_host(spec.shown["host"], spec.shown["port"])
    except EgressRefused as exc:
        location = "url" if "url" in spec.hidden else "host"
        raise Invalid(f"{location}: {exc}", location=location) from None


def _owner(request: Request, state: AppState, project: str, team: str) -> None:
    who = principal(request)
    if project:
        check_project(state, who, project, Role.maintainer)
    elif not who.is_admin:
        raise Forbidden("team channels are managed by site administrators")


def _channel_routes(prefix: str, key: str) -> None:
    def owner_of(value: str) -> tuple[str, str]:
        return (value, "") if key == "project" else ("", value)

    @router.get(f"{prefix}/channels", summary=f"Notification channels of a {key}", name=f"list_{key}_channels")
    async def list_channels(request: Request, owner: str, state: AppState = Depends(app_state)) -> dict[str, Any]:
        project, team = owner_of(owner)
        if project:
            await asyncio.to_thread(check_project, state, principal(request), project, Role.viewer)
        else:
            await asyncio.to_thread(_owner, request, state, project, team)
        return {"items": await asyncio.to_thread(records.list_channels, state.db, project, team)}

    async def may_manage(request: Request, owner: str, state: AppState = Depends(app_state)) -> None:
        """A dependency, so a caller without the role gets 403/404 before the body is validated."""
        project, team = owner_of(owner)
        await asyncio.to_thread(_owner, request, state, project, team)

    @router.put(f"{prefix}/channels/{{name}}", summary=f"Create or replace a {key} channel",
                name=f"put_{key}_channel")  # fmt: skip
    async def put_channel(
        request: Request, owner: str, name: str, body: ChannelIn, state: AppState = Depends(app_state),
        _: None = Depends(may_manage),
    ) -> dict[str, Any]:
        project, team = owner_of(owner)
        spec = _validated(name, body)
        await asyncio.to_thread(_reachable, observe_service(request).egress, spec)
        who = principal(request).username
        return await asyncio.to_thread(records.put_channel, state.db, state.box, project, team, spec, who)

    @router.delete(f"{prefix}/channels/{{name}}", summary=f"Delete a {key} channel", name=f"delete_{key}_channel")
    async def delete_channel(
        request: Request, owner: str, name: str, state: AppState = Depends(app_state)
    ) -> dict[str, Any]:
        project, team = owner_of(owner)
        await asyncio.to_thread(_owner, request, state, project, team)
        who = principal(request).username
        await asyncio.to_thread(records.delete_channel, state.db, project, team, name, who)
        return {"name": name, "deleted": True}

    @router.post(f"{prefix}/channels/{{name}}/test", summary="Send a test notification through a channel",
                 name=f"test_{key}_channel")  # fmt: skip
    async def test_channel(
        request: Request, owner: str, name: str, state: AppState = Depends(app_state)
    ) -> dict[str, Any]:
        project, team = owner_of(owner)
        await asyncio.to_thread(_owner, request, state, project, team)
        service = observe_service(request)
        row = await asyncio.to_thread(records.find_channel, state.db, project, team, name)
        channel = records.channel_of(state.box, row, service.config.external_url)
        now = time.time()
        labels = {"alertname": "JuanieTestNotification", "severity": "P3", "project": project or team}
        alert = Alert(labels, {"summary": f"A test notification from Juanie through channel {name}"}, now)
        notification = Notification("test", "{}:{test}", {"alertname": labels["alertname"]}, (alert,), "firing", now)
        delivery = await service.notifier.send(channel, notification)
        await asyncio.to_thread(records.record_deliveries, state.db, project or team, [delivery], True)
        return {"ok": delivery.ok, "channel": name, "target": delivery.target, "attempts": delivery.attempts,
                "status_code": delivery.status_code, "error": delivery.error}  # fmt: skip


_channel_routes("/api/projects/{owner}", "project")
_channel_routes("/api/teams/{owner}", "team")


# -- settings and discovery ----------------------------------------------------------------------------------
class ObserveSettingsIn(Strict):
    prometheus_url: str | None = Field(default=None, max_length=512, description='"" = the embedded store')
    log_rules: list[dict[str, Any]] | None = Field(default=None, max_length=200)


@router.get("/api/projects/{project}/observe", summary="Where a project's metrics live; its log rules")
async def get_settings(request: Request, project: str, state: AppState = Depends(app_state)) -> dict[str, Any]:
    await asyncio.to_thread(check_project, state, principal(request), project, Role.viewer)
    return await asyncio.to_thread(records.observe_settings, state.db, project)


@router.put("/api/projects/{project}/observe", summary="Set a project's Prometheus URL and log rules")
async def put_settings(
    request: Request, project: str, body: ObserveSettingsIn, state: AppState = Depends(app_state),
    _access: ProjectAccess = require("project.update"),
) -> dict[str, Any]:
    who = principal(request)
    await asyncio.to_thread(check_project, state, who, project, Role.maintainer)
    changes = body.model_dump(exclude_none=True)
    url = changes.get("prometheus_url")
    if url and not url.startswith(("http://", "https://")):
        raise Invalid(f"prometheus_url: expected an http:// or https:// URL, got {url!r}", location="prometheus_url")
    if url:
        try:
            await asyncio.to_thread(observe_service(request).egress.check_url, url)
        except EgressRefused as exc:
            raise Invalid(f"prometheus_url: {exc}", location="prometheus_url") from None
    if "log_rules" in changes:
        try:
            rules_from_config(changes["log_rules"], "log_rules")
        except RuleConfigError as exc:
            raise Invalid(str(exc), location="log_rules") from None
    saved = await asyncio.to_thread(records.set_observe_settings, state.db, project, changes, who.username)
    alerting = observe_service(request).projects.get(project)
    if alerting is not None:
        alerting.loaded_at = 0.0  # re-read at the next round
    return saved


@router.get("/api/sd/{project}", summary="Prometheus HTTP service discovery: the project's scrape targets")
async def service_discovery(request: Request, project: str, state: AppState = Depends(app_state)) -> list[Any]:
    await asyncio.to_thread(check_project, state, principal(request), project, Role.viewer)
    stats = observe_service(request).collector.stats
    groups = []
    for t in stats.targets.values():
        if t.target.job != project:
            continue
        host, _, path = t.target.url.removeprefix("http://").partition("/")
        labels = {k: v for k, v in t.target.labels.items()}
        labels["__meta_juanie_metrics_path"] = "/" + path
        groups.append({"targets": [host], "labels": labels})
    return sorted(groups, key=lambda g: g["targets"][0])


def install(app: FastAPI) -> None:
    app.include_router(router)
