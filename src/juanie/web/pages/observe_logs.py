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
from juanie.web.pages.observe import EnvScope, load_scope, read_env_filter
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
    chosen = read_env_filter(scope, env, service, range_, _)
    level_error = ""
    if level and level not in LEVELS:
        level_error = _("Unknown level %(level)s; showing every level.") % {"level": level[:16]}
        level = ""
    allowed = chosen.env is not None and chosen.env.permission >= EnvPermission.read
    engine = state.engine
    has_engine = engine is not None and hasattr(engine, "read_logs")
    lines: list[ov.LogRow] = []
    tail = ""
    if chosen.env is not None and allowed and has_engine:
        since = time.time() - chosen.rng.seconds
        found = await run_in_threadpool(_search, engine, name, chosen.env, chosen.service, level, q, since)
        lines = ov.log_rows(found)
        params = {"follow": "1", "service": chosen.service, "level": level, "q": q}
        query = urlencode({k: v for k, v in params.items() if v})
        tail = f"/api/projects/{name}/environments/{chosen.env.name}/logs?{query}"
    return page(
        request,
        "observe_logs.html",
        viewer,
        section="observe",
        tab="logs",
        scope=scope,
        env=chosen.env,
        allowed=allowed,
        has_engine=has_engine,
        service=chosen.service,
        level=level,
        q=q,
        rng=chosen.rng,
        ranges=list(ov.RANGES),
        levels=LEVELS,
        lines=lines,
        limit=LIMIT,
        tail_url=tail,
        error=chosen.env_error or level_error or chosen.range_error,
    )
