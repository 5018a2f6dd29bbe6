"""The pipeline run page: the stage graph with durations and states, and the live log."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from juanie.store import accounts
from juanie.web import delivery_queries, pipeline_graph
from juanie.web.i18n import translations
from juanie.web.render import page, request_locale
from juanie.web.session import Viewer, require_viewer

router = APIRouter(include_in_schema=False)
ACTIVE = ("queued", "running")


def _load(db: Any, viewer: Viewer, name: str, run_id: int) -> delivery_queries.RunData | None:
    with db.session() as s:
        return delivery_queries.run_page(s, accounts.get_user(s, viewer.username), name, run_id)


def run_not_found(request: Request, viewer: Viewer, name: str, run_id: int) -> HTMLResponse:
    _ = translations(request_locale(request)).gettext
    return page(
        request,
        "error.html",
        viewer,
        status_code=404,
        title=_("Pipeline run not found"),
        message=_("Project %(name)s has no run %(id)s, or you are not a member of it.")
        % {"name": name[:64], "id": run_id},
    )


@router.get("/projects/{name}/runs/{run_id}", response_class=HTMLResponse)
async def run_detail(
    request: Request, name: str, run_id: int, viewer: Viewer = Depends(require_viewer)
) -> HTMLResponse:
    data = await run_in_threadpool(_load, request.app.state.juanie.db, viewer, name, run_id)
    if data is None:
        return run_not_found(request, viewer, name, run_id)
    run = data.run
    now = datetime.now(UTC)
    return page(
        request,
        "run.html",
        viewer,
        section="home",
        project=name,
        run=run,
        release=data.release,
        waves=pipeline_graph.waves(run["steps"], time.time()),
        duration=pipeline_graph.run_duration(run["started"], run["finished"], now),
        active=run["status"] in ACTIVE,
        can_run=data.access.allows("pipelines.run"),
        can_cancel=data.access.allows("pipelines.cancel"),
    )
