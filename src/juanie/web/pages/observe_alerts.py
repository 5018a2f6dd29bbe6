"""Observe → Alerts and Silences: what fires, what waits, what is muted and by which silence; making and ending
silences.

The lists come from the same records as ``/api/alerts`` and ``/api/silences``; creating and expiring a silence go
through that API from the browser, so its validation and its RBAC (``developer`` and up) are the only rules. A
viewer sees no controls. ``/alerts`` is the same list across every project the viewer may read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from juanie.controllers import observe_records as records
from juanie.store import accounts
from juanie.web import observe_view as ov
from juanie.web.i18n import translations
from juanie.web.pages.observe import Scope, load_scope
from juanie.web.pages.projects import not_found
from juanie.web.render import page, request_locale
from juanie.web.session import Viewer, require_viewer

router = APIRouter(include_in_schema=False)
ALERT_LIMIT = 300


def _alerts(
    db: Any, projects: list[str] | None, state: str, filters: dict[str, str], now: float
) -> tuple[list[ov.AlertRow], dict[str, int]]:
    """The rows of one state tab, and how many alerts each tab holds (for the tab labels)."""
    silence_scope = None if projects is None else [*projects, ""]  # global silences mute every project's alerts
    silences = ov.active_silences(records.list_silences(db, silence_scope, now, False))
    wanted = ["resolved"] if state == "resolved" else ["pending", "firing"]
    open_rows = ov.alert_rows(records.list_episodes(db, projects, ["pending", "firing"], filters, ALERT_LIMIT),
                              silences, "active")  # fmt: skip
    counts = {key: sum(1 for r in open_rows if r.shown_state == key) for key in ("firing", "pending", "silenced")}
    counts["active"] = len(open_rows)
    if wanted == ["resolved"]:
        return ov.alert_rows(records.list_episodes(db, projects, wanted, filters, ALERT_LIMIT), silences, state), counts
    return [r for r in open_rows if state == "active" or r.shown_state == state], counts


def _visible(db: Any, username: str) -> list[str] | None:
    with db.session() as s:
        visible = accounts.visible_projects(s, accounts.get_user(s, username))
        return None if visible is None else sorted(visible)


@dataclass(frozen=True)
class AlertQuery:
    """The alerts pages' state tab and filter form; a state or severity the page does not offer reads as none."""

    state: str
    filters: dict[str, str]


def alert_query(
    state: str = Query("active", max_length=16),
    severity: str = Query("", max_length=8),
    env: str = Query("", max_length=64),
    service: str = Query("", max_length=63),
) -> AlertQuery:
    """One reading of the query for the project and the all-projects alerts pages (a FastAPI dependency).

    ``env`` stays free text: on ``/alerts`` it filters alerts of many projects by label, so it is not settled
    against one project's environments as on the Metrics and Logs pages.
    """
    filters = {
        "severity": severity if severity in ov.SEVERITIES else "",
        "env": env.strip(),
        "service": service.strip(),
    }
    return AlertQuery(state if state in ov.ALERT_STATES else "active", filters)


@router.get("/projects/{name}/alerts", response_class=HTMLResponse)
async def alerts_page(
    request: Request,
    name: str,
    query: AlertQuery = Depends(alert_query),
    viewer: Viewer = Depends(require_viewer),
) -> HTMLResponse:
    db = request.app.state.juanie.db
    scope = await run_in_threadpool(load_scope, db, viewer.username, name)
    if scope is None:
        return not_found(request, viewer, name)
    return await _alerts_page(request, viewer, [name], scope, query)


@router.get("/alerts", response_class=HTMLResponse)
async def all_alerts_page(
    request: Request,
    query: AlertQuery = Depends(alert_query),
    viewer: Viewer = Depends(require_viewer),
) -> HTMLResponse:
    db = request.app.state.juanie.db
    projects = await run_in_threadpool(_visible, db, viewer.username)
    return await _alerts_page(request, viewer, projects, None, query)


async def _alerts_page(
    request: Request, viewer: Viewer, projects: list[str] | None, scope: Scope | None, query: AlertQuery
) -> HTMLResponse:
    """One project's alerts (`scope`) or those of every project the viewer sees (`scope` None): one page."""
    db = request.app.state.juanie.db
    rows, counts = await run_in_threadpool(_alerts, db, projects, query.state, query.filters, time.time())
    return page(request, "observe_alerts.html", viewer, section="observe", tab="alerts", scope=scope, rows=rows,
                counts=counts, state=query.state, f=query.filters, all_projects=scope is None)  # fmt: skip


@router.get("/projects/{name}/silences", response_class=HTMLResponse)
async def silences_page(
    request: Request,
    name: str,
    matchers: str = Query("", max_length=2000),
    viewer: Viewer = Depends(require_viewer),
) -> HTMLResponse:
    db = request.app.state.juanie.db
    scope = await run_in_threadpool(load_scope, db, viewer.username, name)
    if scope is None:
        return not_found(request, viewer, name)
    items = await run_in_threadpool(records.list_silences, db, [name], time.time(), True)
    locale = request_locale(request)
    _ = translations(locale).gettext
    now = datetime.now(UTC)
    durations = [("30m", _("30 minutes")), ("1h", _("1 hour")), ("2h", _("2 hours")), ("4h", _("4 hours")),
                 ("1d", _("1 day")), ("1w", _("1 week"))]  # fmt: skip
    return page(
        request,
        "observe_silences.html",
        viewer,
        section="observe",
        tab="silences",
        scope=scope,
        groups=ov.split_silences(items),
        prefill=matchers.strip(),
        durations=durations,
        relative=lambda when: ov.relative(when, now, locale),
    )
