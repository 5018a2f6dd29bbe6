"""Observe → Logs: search an environment's captured process logs, then follow them live.

The search is rendered here from the engine's log store with the same filter as
``GET /api/projects/{project}/environments/{env}/logs``; following opens that route with ``follow=1`` (SSE) in
the browser, so a tail is authorised by the API exactly like the search (``read`` on the environment).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from juanie.domain.rbac import EnvPermission
from juanie.engines.base import EnvRef
from juanie.web import observe_view as ov
from juanie.web.i18n import translations
from juanie.web.pages.observe import EnvScope, load_scope, pick_env
from juanie.web.pages.projects import not_found
from juanie.web.render import page, request_locale
from juanie.web.session import Viewer, require_viewer

router = APIRouter(include_in_schema=False)
LEVELS = ("debug", "info", "warning", "error", "critical")
LIMIT = 500


def _search(engine: Any, project: str, env: EnvScope, service: str, level: str, q: str, since: float) -> list[Any]:
    from juanie.engines.local.logs import LogFilter

    flt = LogFilter(service=service, level=level, contains=q)
    return list(engine.read_logs(EnvRef(project, env.name, env.namespace), flt, since, LIMIT))


@router.get("/projects/{name}/logs", response_class=HTMLResponse)
async def logs_page(
    request: Request,
    name: str,
    env: str = Query("", max_length=64),
    service: str = Query("", max_length=63),
    level: str = Query("", max_length=16),
    q: str = Query("", max_length=200),
    range_: str = Query("", alias="range", max_length=16),
    viewer: Viewer = Depends(require_viewer),
) -> HTMLResponse:
    state = request.app.state.juanie
    scope = await run_in_threadpool(load_scope, state.db, viewer.username, name)
    if scope is None:
        return not_found(request, viewer, name)
    _ = translations(request_locale(request)).gettext
    error = ""
    try:
        rng = ov.parse_range(range_)
    except ov.RangeError:
        rng = ov.parse_range(None)
        error = _("Unknown time range %(range)s; showing the last hour.") % {"range": range_[:16]}
    if level and level not in LEVELS:
        error = _("Unknown level %(level)s; showing every level.") % {"level": level[:16]}
        level = ""
    chosen = pick_env(scope, env)
    if chosen is None and env:
        error = _("Project %(name)s has no environment %(env)s.") % {"name": name, "env": env[:64]}
        chosen = pick_env(scope, "")
    allowed = chosen is not None and chosen.permission >= EnvPermission.read
    engine = state.engine
    has_engine = engine is not None and hasattr(engine, "read_logs")
    lines: list[ov.LogRow] = []
    if chosen is not None and allowed and has_engine:
        since = time.time() - rng.seconds
        found = await run_in_threadpool(_search, engine, name, chosen, service.strip(), level, q, since)
        lines = ov.log_rows(found)
    tail = ""
    if chosen is not None and allowed and has_engine:
        params = {"follow": "1", "service": service.strip(), "level": level, "q": q}
        tail = f"/api/projects/{name}/environments/{chosen.name}/logs?" + urlencode({k: v for k, v in params.items()
                                                                                     if v})  # fmt: skip
    return page(
        request,
        "observe_logs.html",
        viewer,
        section="observe",
        tab="logs",
        scope=scope,
        env=chosen,
        allowed=allowed,
        has_engine=has_engine,
        service=service.strip(),
        level=level,
        q=q,
        rng=rng,
        ranges=list(ov.RANGES),
        levels=LEVELS,
        lines=lines,
        limit=LIMIT,
        tail_url=tail,
        error=error,
    )
