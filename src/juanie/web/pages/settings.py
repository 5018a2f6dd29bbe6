"""Settings: your API tokens, users and teams (administrators), notification channels."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from juanie.store import accounts
from juanie.store.models import Team, TeamMember, User
from juanie.web.i18n import translations
from juanie.web.pages import observe_channels
from juanie.web.render import page, request_locale
from juanie.web.session import Viewer, require_viewer

router = APIRouter(include_in_schema=False)


def _tokens(db: Any, username: str) -> list[Any]:
    with db.session() as s:
        return accounts.list_tokens(s, accounts.get_user(s, username))


def _users_and_teams(db: Any) -> tuple[list[User], list[dict[str, Any]]]:
    with db.session() as s:
        users = list(s.scalars(select(User).order_by(User.username)))
        teams = list(s.scalars(select(Team).order_by(Team.name)))
        by_team: dict[int, list[str]] = {}
        for team_id, username in s.execute(
            select(TeamMember.team_id, User.username).join(User, User.id == TeamMember.user_id)
        ):
            by_team.setdefault(team_id, []).append(username)
        return users, [{"name": t.name, "members": sorted(by_team.get(t.id, []))} for t in teams]


def _settings_page(request: Request, template: str, viewer: Viewer, **context: Any) -> HTMLResponse:
    """A settings page; each one says plainly when projects' code runs unsandboxed."""
    sandbox = request.app.state.juanie.sandbox
    status = sandbox.status() if sandbox is not None else None
    return page(request, template, viewer, section="settings", sandbox=status, **context)


@router.get("/settings")
async def settings_index() -> RedirectResponse:
    return RedirectResponse("/settings/tokens", status_code=303)


@router.get("/settings/tokens", response_class=HTMLResponse)
async def tokens_page(request: Request, viewer: Viewer = Depends(require_viewer)) -> HTMLResponse:
    tokens = await run_in_threadpool(_tokens, request.app.state.juanie.db, viewer.username)
    tokens.sort(key=lambda t: (t.revoked_at is not None, -t.id))
    return _settings_page(request, "settings_tokens.html", viewer, tab="tokens", tokens=tokens)


@router.get("/settings/users", response_class=HTMLResponse)
async def users_page(request: Request, viewer: Viewer = Depends(require_viewer)) -> HTMLResponse:
    if not viewer.is_admin:
        _ = translations(request_locale(request)).gettext
        return page(
            request,
            "error.html",
            viewer,
            status_code=403,
            title=_("Administrators only"),
            message=_("Managing users and teams needs a site administrator."),
        )
    users, teams = await run_in_threadpool(_users_and_teams, request.app.state.juanie.db)
    return _settings_page(request, "settings_users.html", viewer, tab="users", users=users, teams=teams)


@router.get("/settings/notifications", response_class=HTMLResponse)
async def notifications_page(request: Request, viewer: Viewer = Depends(require_viewer)) -> HTMLResponse:
    channels = await run_in_threadpool(observe_channels.channels_for, request.app.state.juanie.db, viewer.username)
    return _settings_page(request, "settings_notifications.html", viewer, tab="notifications", channels=channels)
