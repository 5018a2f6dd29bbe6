"""The web UI's entry point: `install(app)` adds the pages, the static assets and the UI's live endpoints.

The API server calls it when this package is present. Pages live beside the API rather than on top of it:
they read the store directly for fast server-side rendering, and the browser calls the API (with the session
cookie and the CSRF header) for every change, so the API's validation and RBAC are the only rules.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from juanie.web.pages import (
    auth,
    deployments,
    events,
    gitops,
    home,
    observe,
    observe_alerts,
    observe_logs,
    projects,
    runs,
    settings,
)
from juanie.web.session import LoginRequired, login_url

STATIC_DIR = Path(__file__).parent / "static"


class _CachedStatic(StaticFiles):
    """Assets are versioned by `?v=<version>` in the page, so browsers may keep them for a day."""

    def file_response(self, *args, **kwargs) -> Response:  # type: ignore[no-untyped-def]
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=86400"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


async def _to_login(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(login_url(exc.next_path), status_code=303)


def install(app: FastAPI) -> None:
    app.mount("/static", _CachedStatic(directory=STATIC_DIR), name="static")
    app.add_exception_handler(LoginRequired, _to_login)
    for module in (auth, events, deployments):
        app.include_router(module.api_router)
    pages = (auth, home, projects, runs, gitops, deployments, events, settings, observe, observe_alerts, observe_logs)
    for module in pages:
        app.include_router(module.router)
