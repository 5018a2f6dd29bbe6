"""The home page: the projects the viewer can see, with their environments, and what needs attention."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from juanie.store import accounts
from juanie.web import queries
from juanie.web.render import page
from juanie.web.session import Viewer, require_viewer

router = APIRouter(include_in_schema=False)


def _load(db: object, viewer: Viewer, q: str, page_number: int) -> queries.HomeData:
    with db.session() as s:  # type: ignore[attr-defined]
        user = accounts.get_user(s, viewer.username)
        return queries.home(s, accounts.visible_projects(s, user), query=q, page=page_number)


@router.get("/", response_class=HTMLResponse)
async def home(
    request: Request,
    q: str = Query("", max_length=200),
    page_number: int = Query(1, alias="page", ge=1, le=100_000),
    viewer: Viewer = Depends(require_viewer),
) -> HTMLResponse:
    data = await run_in_threadpool(_load, request.app.state.juanie.db, viewer, q, page_number)
    return page(request, "home.html", viewer, section="home", data=data)
