"""The deployment page: weights and steps, live golden signals per version, the judge's verdicts, the events.

The first render comes from the store. The browser then polls the delivery API (`GET /api/deployments/{id}`)
every two seconds; while a server does not offer that route yet, it falls back to `/api/ui/deployments/{id}`,
which serves the same shape from the store, so the page keeps updating either way.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from juanie.api.auth import principal
from juanie.domain.errors import NotFound
from juanie.store import accounts
from juanie.store import events as event_store
from juanie.web import delivery_queries, deploy_view
from juanie.web.i18n import translations
from juanie.web.render import page, request_locale
from juanie.web.session import Viewer, require_viewer

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/ui", tags=["ui"])
EVENT_LIMIT = 50


def _load(db: Any, viewer: Viewer, name: str, deployment_id: int) -> tuple[Any, list[Any]]:
    with db.session() as s:
        user = accounts.get_user(s, viewer.username)
        data = delivery_queries.deployment_page(s, user, name, deployment_id)
        if data is None:
            return None, []
        flt = event_store.EventFilter(project=name, subject=f"deployment/{deployment_id}")
        return data, event_store.query(s, flt, limit=EVENT_LIMIT)


@router.get("/projects/{name}/deployments/{deployment_id}", response_class=HTMLResponse)
async def deployment_detail(
    request: Request, name: str, deployment_id: int, viewer: Viewer = Depends(require_viewer)
) -> HTMLResponse:
    data, events = await run_in_threadpool(_load, request.app.state.juanie.db, viewer, name, deployment_id)
    if data is None:
        _ = translations(request_locale(request)).gettext
        return page(
            request,
            "error.html",
            viewer,
            status_code=404,
            title=_("Deployment not found"),
            message=_("Project %(name)s has no deployment %(id)s, or you are not a member of it.")
            % {"name": name[:64], "id": deployment_id},
        )
    dep = data.deployment
    controls = [(c, deploy_view.control_applies(c, dep)) for c in deploy_view.CONTROLS]
    return page(
        request,
        "deployment.html",
        viewer,
        section="home",
        project=name,
        d=dep,
        data=data,
        marks=deploy_view.step_marks(dep),
        canary=deploy_view.canary_weight(dep),
        verdicts=deploy_view.verdict_rows(dep.get("verdicts")),
        signals=deploy_view.signal_rows(dep),
        controls=controls,
        can_act=data.permission in ("deploy", "admin") and data.access.project.status != "archived",
        events=events,
        last_event_id=max((e.id for e in events), default=0),
    )


def _json(db: Any, username: str, deployment_id: int) -> dict[str, Any] | None:
    with db.session() as s:
        return delivery_queries.deployment_for_viewer(s, accounts.get_user(s, username), deployment_id)


@api_router.get("/deployments/{deployment_id}", summary="A deployment as the UI reads it (from the store)")
async def deployment_json(deployment_id: int, request: Request) -> dict[str, Any]:
    who = principal(request)
    found = await run_in_threadpool(_json, request.app.state.juanie.db, who.username, deployment_id)
    if found is None:
        raise NotFound(f"deployment {deployment_id} not found", location="deployment_id")
    return found
