"""Observe → Metrics: request rate, error ratio, latency percentiles, CPU and memory of one environment's services.

The charts are drawn on the server (``web/svg.py``) from the same query layer as ``/api/metrics/query_range``
(the embedded store, or the project's Prometheus). The page re-reads itself every few seconds and swaps in the
fresh charts, so they move without a chart library. ``scope`` is shared by every Observe page: who may see and do
what in a project.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from juanie.domain.rbac import EnvPermission, Role, env_permission
from juanie.store import accounts
from juanie.store.models import Project
from juanie.web import observe_view as ov
from juanie.web.i18n import translations
from juanie.web.pages.projects import not_found
from juanie.web.render import page, request_locale
from juanie.web.session import Viewer, require_viewer

router = APIRouter(include_in_schema=False)
_QUERY_ERRORS = (ValueError, RuntimeError, OSError)  # PromQL, store and Prometheus errors all derive from these


@dataclass(frozen=True)
class EnvScope:
    name: str
    namespace: str
    permission: EnvPermission


@dataclass(frozen=True)
class Scope:
    """A project as one viewer may observe it; None from ``load_scope`` means hidden or missing."""

    project: str
    status: str
    role: Role | None
    is_admin: bool
    envs: list[EnvScope] = field(default_factory=list)

    @property
    def can_silence(self) -> bool:
        """Creating and expiring silences needs ``developer`` (the API's rule; the API checks again)."""
        return self.is_admin or (self.role is not None and self.role >= Role.developer)

    def env(self, name: str) -> EnvScope | None:
        return next((e for e in self.envs if e.name == name), None)

    def readable_envs(self) -> list[EnvScope]:
        return [e for e in self.envs if e.permission >= EnvPermission.read]


def load_scope(db: Any, username: str, name: str) -> Scope | None:
    with db.session() as s:
        user = accounts.get_user(s, username)
        project = s.scalar(select(Project).where(Project.name == name))
        if project is None:
            return None
        role = accounts.project_role(s, user, project)
        if role is None and not user.is_admin:
            return None
        envs = [
            EnvScope(
                e.name,
                e.namespace,
                env_permission(
                    role,
                    accounts.env_grants_for(s, user, e),
                    restricted=e.deploy_restricted,
                    is_admin=user.is_admin,
                ),
            )
            for e in project.environments
        ]
        return Scope(project.name, project.status, role, user.is_admin, envs)


def pick_env(scope: Scope, wanted: str) -> EnvScope | None:
    """The environment asked for, else the first one (dev comes first on a fresh project)."""
    if wanted:
        return scope.env(wanted)
    return scope.envs[0] if scope.envs else None


@dataclass(frozen=True)
class EnvFilter:
    """An Observe page's ``env``, ``service`` and ``range`` query, settled against the project it looks at.

    A range the picker does not offer or an environment the project lacks does not fail the page: it shows the
    last hour or the first environment and says why. The two complaints are kept apart because a page may rank
    its own between them (the logs page's unknown level outranks the range, an unknown environment outranks both).
    """

    env: EnvScope | None
    service: str
    rng: ov.TimeRange
    range_error: str = ""
    env_error: str = ""


def read_env_filter(scope: Scope, env: str, service: str, range_: str, gettext: Callable[[str], str]) -> EnvFilter:
    """The Metrics and Logs pages' shared reading of their filter form (the Alerts pages filter across projects)."""
    range_error = ""
    try:
        rng = ov.parse_range(range_)
    except ov.RangeError:
        rng = ov.parse_range(None)
        range_error = gettext("Unknown time range %(range)s; showing the last hour.") % {"range": range_[:16]}
    chosen, env_error = pick_env(scope, env), ""
    if chosen is None and env:
        env_error = gettext("Project %(name)s has no environment %(env)s.") % {"name": scope.project, "env": env[:64]}
        chosen = pick_env(scope, "")
    return EnvFilter(chosen, service.strip(), rng, range_error, env_error)


def _charts(service: Any, project: str, namespace: str, svc: str, rng: ov.TimeRange, now: float) -> dict[str, Any]:
    """Run every chart's queries; a chart whose query fails carries the error instead of lines."""
    backend = service.backend_for(project)
    start = now - rng.seconds
    charts: list[dict[str, Any]] = []
    for chart in ov.chart_queries(namespace, svc, rng):
        try:
            answers = [backend.query_range(expr, start, now, rng.step).to_dict() for _, expr in chart.queries]
        except _QUERY_ERRORS as exc:
            charts.append({"key": chart.key, "unit": chart.unit, "series": [], "latest": None, "error": str(exc)})
            continue
        if chart.ratio:
            lines = ov.ratio(answers[0], answers[1], rng.step, by=chart.by)
        else:
            legends = [legend for legend, _ in chart.queries]
            lines = ov.shape(answers, legends, rng.step, scale=ov.SCALES.get(chart.unit, 1.0), by=chart.by)
        charts.append({"key": chart.key, "unit": chart.unit, "series": lines, "latest": ov.latest(lines), "error": ""})
    services: list[str] = []
    try:
        found = backend.query(ov.services_query(namespace), now).samples()
        services = sorted({labels.get("service", "") for labels, _ in found} - {""})
    except _QUERY_ERRORS:
        pass
    return {"charts": charts, "services": services, "start": start, "end": now}


@router.get("/projects/{name}/metrics", response_class=HTMLResponse)
async def metrics_page(
    request: Request,
    name: str,
    env: str = Query("", max_length=64),
    service: str = Query("", max_length=63),
    range_: str = Query("", alias="range", max_length=16),
    viewer: Viewer = Depends(require_viewer),
) -> HTMLResponse:
    scope = await run_in_threadpool(load_scope, request.app.state.juanie.db, viewer.username, name)
    if scope is None:
        return not_found(request, viewer, name)
    chosen = read_env_filter(scope, env, service, range_, translations(request_locale(request)).gettext)
    data: dict[str, Any] = {"charts": [], "services": [], "start": 0.0, "end": 0.0}
    if chosen.env is not None:
        data = await run_in_threadpool(
            _charts, request.app.state.observe, name, chosen.env.namespace, chosen.service, chosen.rng, time.time()
        )
    has_data = any(c["series"] for c in data["charts"])
    return page(
        request,
        "observe_metrics.html",
        viewer,
        section="observe",
        tab="metrics",
        scope=scope,
        env=chosen.env,
        service=chosen.service,
        rng=chosen.rng,
        ranges=list(ov.RANGES),
        formats=ov.FORMATS,
        y_tops=ov.Y_TOPS,
        has_data=has_data,
        error=chosen.env_error or chosen.range_error,
        refresh_seconds=int(min(30.0, max(5.0, chosen.rng.seconds / 720))),
        **data,
    )
