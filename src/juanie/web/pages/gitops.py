"""The GitOps page: each environment's history in the GitOps repository, and a side-by-side diff of two revisions.

Read on the server from the repository itself (the same edge the API's `/gitops/log` and `/gitops/diff` use), so
the page works without JavaScript and a diff of two revisions is a link that can be shared.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from juanie.store import accounts
from juanie.web import delivery_queries
from juanie.web.i18n import translations
from juanie.web.pages.projects import not_found
from juanie.web.render import page, request_locale
from juanie.web.session import Viewer, require_viewer
from juanie.web.sidediff import side_by_side

router = APIRouter(include_in_schema=False)
log = logging.getLogger("juanie.web")
HISTORY_LIMIT = 50
_REV = re.compile(r"^[0-9a-fA-F]{4,64}$")


def _project(db: Any, viewer: Viewer, name: str) -> tuple[str, list[str]] | None:
    with db.session() as s:
        access = delivery_queries.project_access(s, accounts.get_user(s, viewer.username), name)
        if access is None:
            return None
        return access.project.gitops_url, [e.name for e in access.project.environments]


def _read(repos: Any, name: str, url: str, env: str | None, a: str | None, b: str | None) -> dict[str, Any]:
    """History (and the diff, when two revisions are chosen). Git failures become a message, not a 500."""
    repo = repos.repo(name, url)
    history = repo.log(env, HISTORY_LIMIT)
    diff = repo.diff(a, b) if a and b else None
    return {"history": history, "diff": diff}


@router.get("/projects/{name}/gitops", response_class=HTMLResponse)
async def gitops_page(
    request: Request,
    name: str,
    env: str | None = Query(None, max_length=64),
    a: str | None = Query(None, max_length=64),
    b: str | None = Query(None, max_length=64),
    viewer: Viewer = Depends(require_viewer),
) -> HTMLResponse:
    state = request.app.state.juanie
    found = await run_in_threadpool(_project, state.db, viewer, name)
    if found is None:
        return not_found(request, viewer, name)
    url, envs = found
    _ = translations(request_locale(request)).gettext
    env = env if env in envs else None
    error = ""
    if (a or b) and not (a and b and _REV.match(a) and _REV.match(b)):
        error = _("Choose two revisions to compare: A and B must both be commit ids (4 to 64 hex digits).")
        a = b = None
    history: list[Any] = []
    diff = None
    if state.gitops is None:
        error = _("This server has no GitOps repositories configured.")
    else:
        try:
            data = await run_in_threadpool(_read, state.gitops, name, url, env, a, b)
            history, diff = data["history"], data["diff"]
        except Exception as exc:  # git's own words, with credentials already redacted by the edge
            log.warning("gitops page for %s: %s", name, exc)
            error = _("The GitOps repository could not be read: %(reason)s") % {"reason": str(exc)[:300]}
    return page(
        request,
        "gitops.html",
        viewer,
        section="home",
        project=name,
        envs=envs,
        env=env,
        history=history,
        a=a,
        b=b,
        sbs=side_by_side(diff) if diff is not None else None,
        error=error,
    )
