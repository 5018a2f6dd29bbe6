"""The event log, newest first, filtered, paged by cursor (the id of the last event seen)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request

from juanie.api.auth import principal
from juanie.api.schemas import ROW_ID_MAX
from juanie.api.state import AppState, app_state
from juanie.store import accounts
from juanie.store import events as event_store

router = APIRouter(prefix="/api/events", tags=["events"])


@router.get("", summary="Events you can see, with filters and cursor pagination")
def list_events(
    request: Request,
    project: str | None = Query(None, max_length=64),
    environment: str | None = Query(None, max_length=64),
    kind: str | None = Query(None, max_length=64, description="exact kind, or a prefix like 'project.*'"),
    actor: str | None = Query(None, max_length=128),
    subject: str | None = Query(None, max_length=256),
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: int | None = Query(None, ge=0, le=ROW_ID_MAX, description="return events older than this id"),
    after: int | None = Query(None, ge=0, le=ROW_ID_MAX, description="return events newer than this id (oldest first)"),
    limit: int = Query(50, ge=1, le=500),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    who = principal(request)
    with state.db.session() as s:
        user = accounts.get_user(s, who.username)
        visible = accounts.visible_projects(s, user)
        flt = event_store.EventFilter(
            project=project,
            environment=environment,
            kind=kind,
            actor=actor,
            subject=subject,
            since=since,
            until=until,
            projects_visible=visible,
        )
        rows = event_store.query(
            s, flt, before=cursor, after=after, limit=limit + 1, ascending=after is not None
        )
        page, more = rows[:limit], len(rows) > limit
        items = [event_store.to_dict(e) for e in page]
    next_cursor = page[-1].id if more and after is None and page else None
    return {
        "items": items,
        "next_cursor": next_cursor,
        "next_after": page[-1].id if after is not None and page else None,
    }
