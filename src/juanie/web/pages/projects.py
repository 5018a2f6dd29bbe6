"""Project pages: create, the environment board, and members & permissions."""

from __future__ import annotations

import itertools
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from juanie.store import accounts
from juanie.store import events as event_store
from juanie.web import delivery_queries, queries
from juanie.web.render import page
from juanie.web.session import Viewer, require_viewer

router = APIRouter(include_in_schema=False)
RECENT_EVENTS = 15


def _load(
    db: Any, viewer: Viewer, name: str, *, with_events: bool = True
) -> tuple[queries.ProjectData | None, list[Any], delivery_queries.BoardExtras]:
    with db.session() as s:
        user = accounts.get_user(s, viewer.username)
        data = queries.project_page(s, name, user)
        if data is None or not with_events:
            return data, [], delivery_queries.BoardExtras()
        access = delivery_queries.project_access(s, user, name)
        extras = delivery_queries.board_extras(s, access.project) if access else delivery_queries.BoardExtras()
        events = event_store.query(s, event_store.EventFilter(project=name), limit=RECENT_EVENTS)
        return data, events, extras


def not_found(request: Request, viewer: Viewer, name: str) -> HTMLResponse:
    from juanie.web.i18n import translations
    from juanie.web.render import request_locale

    _ = translations(request_locale(request)).gettext
    return page(
        request,
        "error.html",
        viewer,
        status_code=404,
        title=_("Project not found"),
        message=_("There is no project %(name)s, or you are not a member of it.") % {"name": name[:64]},
    )


@router.get("/projects/new", response_class=HTMLResponse)
async def new_project(request: Request, viewer: Viewer = Depends(require_viewer)) -> HTMLResponse:
    return page(request, "project_new.html", viewer, section="home")


@router.get("/projects/{name}", response_class=HTMLResponse)
async def project(request: Request, name: str, viewer: Viewer = Depends(require_viewer)) -> HTMLResponse:
    data, events, extras = await run_in_threadpool(_load, request.app.state.juanie.db, viewer, name)
    if data is None:
        return not_found(request, viewer, name)
    last_id = max((e.id for e in events), default=0)
    names = [e.name for e in data.environments]
    promote_from = {b: a for a, b in itertools.pairwise(names)}
    return page(
        request,
        "project.html",
        viewer,
        section="home",
        p=data,
        events=events,
        last_event_id=last_id,
        x=extras,
        promote_from=promote_from,
    )


@router.get("/projects/{name}/settings", response_class=HTMLResponse)
async def project_settings(request: Request, name: str, viewer: Viewer = Depends(require_viewer)) -> HTMLResponse:
    data, _events, _extras = await run_in_threadpool(
        partial(_load, request.app.state.juanie.db, viewer, name, with_events=False)
    )
    if data is None:
        return not_found(request, viewer, name)
    return page(request, "project_settings.html", viewer, section="home", p=data)
