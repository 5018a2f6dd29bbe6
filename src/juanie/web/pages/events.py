"""The event timeline: filters, cursor paging, and live updates over SSE."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from juanie.api import sse
from juanie.api.auth import principal
from juanie.domain import events as kinds
from juanie.store import accounts
from juanie.store import events as event_store
from juanie.store.models import Event, Project
from juanie.web.render import page, render_html, request_locale
from juanie.web.session import Viewer, require_viewer

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/ui", tags=["ui"])
PAGE_SIZE = 50
STREAM_BATCH = 100
STREAM_MAX_SECONDS = 300.0


@dataclass(frozen=True)
class Filters:
    project: str | None = None
    environment: str | None = None
    kind: str | None = None
    actor: str | None = None
    subject: str | None = None  # one thing's timeline, e.g. "deployment/42"

    def query(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


def known_kinds() -> list[str]:
    """Every event kind Juanie declares, plus one `prefix.*` per family, for the filter menu."""
    exact = sorted({v for k, v in vars(kinds).items() if k.isupper() and isinstance(v, str) and "." in v})
    families = sorted({k.split(".", 1)[0] + ".*" for k in exact})
    return families + exact


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def filters_from(
    project: str | None,
    environment: str | None,
    kind: str | None,
    actor: str | None,
    subject: str | None = None,
) -> Filters:
    return Filters(_clean(project), _clean(environment), _clean(kind), _clean(actor), _clean(subject))


def _store_filter(f: Filters, visible: frozenset[str] | None) -> event_store.EventFilter:
    return event_store.EventFilter(
        project=f.project,
        environment=f.environment,
        kind=f.kind,
        actor=f.actor,
        subject=f.subject,
        projects_visible=visible,
    )


def _page_data(db: Any, username: str, f: Filters, cursor: int | None) -> dict[str, Any]:
    with db.session() as s:
        user = accounts.get_user(s, username)
        visible = accounts.visible_projects(s, user)
        rows = event_store.query(s, _store_filter(f, visible), before=cursor, limit=PAGE_SIZE + 1)
        newest = s.scalar(select(func.max(Event.id))) or 0
        names_stmt = select(Project.name).order_by(Project.name).limit(200)
        if visible is not None:
            names_stmt = names_stmt.where(Project.name.in_(sorted(visible)))
        names = list(s.scalars(names_stmt))
    page_rows = rows[:PAGE_SIZE]
    next_cursor = page_rows[-1].id if len(rows) > PAGE_SIZE else None
    return {"events": page_rows, "next_cursor": next_cursor, "newest": newest, "project_names": names}


def _query(max_length: int) -> Any:
    return Query(None, max_length=max_length)


@router.get("/events", response_class=HTMLResponse)
async def events_page(
    request: Request,
    project: str | None = _query(64),
    environment: str | None = _query(64),
    kind: str | None = _query(64),
    actor: str | None = _query(128),
    cursor: int | None = Query(None, ge=0),
    viewer: Viewer = Depends(require_viewer),
) -> HTMLResponse:
    f = filters_from(project, environment, kind, actor)
    data = await run_in_threadpool(_page_data, request.app.state.juanie.db, viewer.username, f, cursor)
    stream_url = "/api/ui/events/stream?" + urlencode(f.query() | {"after": str(data["newest"])})
    older_url = "/events?" + urlencode(f.query() | {"cursor": str(data["next_cursor"])})
    return page(
        request,
        "events.html",
        viewer,
        section="events",
        f=f,
        kinds=known_kinds(),
        stream_url=stream_url if cursor is None else "",
        older_url=older_url,
        error=None,
        **data,
    )


def _fetch_new(db: Any, username: str, f: Filters, cursor: int) -> list[Any]:
    with db.session() as s:
        user = accounts.get_user(s, username)
        return event_store.query(
            s,
            _store_filter(f, accounts.visible_projects(s, user)),
            after=cursor,
            limit=STREAM_BATCH,
            ascending=True,
        )


@api_router.get("/events/stream", summary="New events as server-sent events (HTML rows for the timeline)")
async def events_stream(
    request: Request,
    project: str | None = _query(64),
    environment: str | None = _query(64),
    kind: str | None = _query(64),
    actor: str | None = _query(128),
    subject: str | None = _query(256),
    after: int | None = Query(None, ge=0),
) -> StreamingResponse:
    who = principal(request)
    f = filters_from(project, environment, kind, actor, subject)
    db = request.app.state.juanie.db
    locale = request_locale(request)
    start = sse.resume_point(request.headers.get("last-event-id"), after)

    async def fetch(cursor: int) -> list[sse.Item]:
        rows = await run_in_threadpool(_fetch_new, db, who.username, f, cursor)
        return [
            sse.Item(e.id, json.dumps({"id": e.id, "html": render_html(locale, "_event_row.html", {"event": e})}))
            for e in rows
        ]

    stream = sse.poll_stream(fetch, after=start, disconnected=request.is_disconnected, max_seconds=STREAM_MAX_SECONDS)
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
