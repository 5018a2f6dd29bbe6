"""Login, users, teams and API tokens."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from juanie.api.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    parse_basic,
    principal,
    require_admin,
)
from juanie.api.login import check_login
from juanie.api.schemas import LoginIn, RowId, TeamIn, TeamMemberIn, TokenIn, UserIn
from juanie.api.state import AppState, app_state
from juanie.domain import events as kinds
from juanie.domain.credentials import new_token
from juanie.domain.errors import Forbidden, NotFound, Unauthorized
from juanie.store import accounts
from juanie.store.events import record
from juanie.store.models import ApiToken, Team, TeamMember, User

router = APIRouter(prefix="/api", tags=["auth"])
SESSION_TTL = timedelta(hours=12)


def _token_dict(token: ApiToken) -> dict[str, object]:
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": token.created_at.isoformat(),
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "revoked": token.revoked_at is not None,
    }


def _user_dict(user: User) -> dict[str, object]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "is_admin": user.is_admin,
        "is_active": user.is_active,
        "created_at": user.created_at.isoformat(),
    }


@router.post("/auth/login", summary="Exchange a username and password (HTTP Basic) for a token")
def login(
    request: Request, body: LoginIn | None = Body(default=None), state: AppState = Depends(app_state)
) -> JSONResponse:
    """Failed attempts lock the user out from this address (429 with Retry-After, doubling up to 15 minutes), never
    from another one; see `juanie.api.login`."""
    credentials = parse_basic(request.headers.get("authorization", ""))
    if credentials is None:
        raise Unauthorized("send the username and password as HTTP Basic credentials")
    username, password = credentials
    client = request.client.host if request.client else ""
    options = body or LoginIn()
    check_login(state.db, state.metrics, username, password, client)
    with state.db.session() as s:
        user = accounts.get_user(s, username)
        kind, ttl = ("session", SESSION_TTL) if options.session else ("api", None)
        token, plaintext = accounts.issue_token(s, user, options.token_name, kind=kind, ttl=ttl)
        record(
            s,
            actor=username,
            kind=kinds.LOGIN_SUCCEEDED,
            subject=f"user/{username}",
            data={"client": client, "token": token.prefix, "kind": kind},
        )
        body_out = {
            "token": plaintext,
            "token_id": token.id,
            "username": username,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        }
    response = JSONResponse(body_out)
    if options.session:
        csrf = new_token()
        secure = request.url.scheme == "https"
        response.set_cookie(
            SESSION_COOKIE,
            plaintext,
            httponly=True,
            samesite="strict",
            secure=secure,
            max_age=int(SESSION_TTL.total_seconds()),
        )
        response.set_cookie(
            CSRF_COOKIE,
            csrf,
            httponly=False,
            samesite="strict",
            secure=secure,
            max_age=int(SESSION_TTL.total_seconds()),
        )
    return response


@router.post("/auth/logout", summary="Revoke the token or session used for this request")
def logout(request: Request, state: AppState = Depends(app_state)) -> JSONResponse:
    who = principal(request)
    with state.db.session() as s:
        token = s.get(ApiToken, who.token_id)
        if token is not None and token.kind == "session":
            accounts.revoke_token(s, token, actor=who.username)
    response = JSONResponse({"status": "logged out"})
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response


@router.get("/tokens", summary="Your API tokens (never their values)")
def list_tokens(request: Request, state: AppState = Depends(app_state)) -> dict[str, object]:
    who = principal(request)
    with state.db.session() as s:
        user = accounts.get_user(s, who.username)
        return {"items": [_token_dict(t) for t in accounts.list_tokens(s, user)]}


@router.post(
    "/tokens", status_code=201, summary="Create an API token; its value is shown only in this response"
)
def create_token(body: TokenIn, request: Request, state: AppState = Depends(app_state)) -> dict[str, object]:
    who = principal(request)
    with state.db.session() as s:
        user = accounts.get_user(s, who.username)
        ttl = timedelta(days=body.expires_in_days) if body.expires_in_days else None
        token, plaintext = accounts.issue_token(s, user, body.name, ttl=ttl)
        return _token_dict(token) | {"token": plaintext}


@router.delete("/tokens/{token_id}", summary="Revoke one of your tokens (admins: anyone's)")
def revoke_token(token_id: RowId, request: Request, state: AppState = Depends(app_state)) -> dict[str, object]:
    who = principal(request)
    with state.db.session() as s:
        token = s.get(ApiToken, token_id)
        if token is None or (token.user_id != who.user_id and not who.is_admin):
            raise NotFound(f"token {token_id} not found", location="token_id")
        accounts.revoke_token(s, token, actor=who.username)
        return _token_dict(token)


@router.get("/users", summary="All users (administrators only)")
def list_users(
    who: Principal = Depends(require_admin), state: AppState = Depends(app_state)
) -> dict[str, object]:
    with state.db.session() as s:
        return {"items": [_user_dict(u) for u in s.scalars(select(User).order_by(User.username))]}


@router.post("/users", status_code=201, summary="Create a user (administrators only)")
def create_user(
    body: UserIn, who: Principal = Depends(require_admin), state: AppState = Depends(app_state)
) -> dict[str, object]:
    with state.db.session() as s:
        user = accounts.create_user(
            s,
            body.username,
            password=body.password,
            is_admin=body.is_admin,
            display_name=body.display_name,
            email=body.email,
            actor=who.username,
        )
        return _user_dict(user)


@router.get("/users/{username}", summary="One user (yourself, or anyone for administrators)")
def get_user(username: str, request: Request, state: AppState = Depends(app_state)) -> dict[str, object]:
    who = principal(request)
    if username != who.username and not who.is_admin:
        raise Forbidden("you may only look up yourself")
    with state.db.session() as s:
        return _user_dict(accounts.get_user(s, username))


@router.get("/teams", summary="Teams and their members")
def list_teams(request: Request, state: AppState = Depends(app_state)) -> dict[str, object]:
    principal(request)
    with state.db.session() as s:
        teams = list(s.scalars(select(Team).order_by(Team.name)))
        members = s.execute(
            select(TeamMember.team_id, User.username).join(User, User.id == TeamMember.user_id)
        )
        by_team: dict[int, list[str]] = {}
        for team_id, username in members:
            by_team.setdefault(team_id, []).append(username)
        return {"items": [{"name": t.name, "members": sorted(by_team.get(t.id, []))} for t in teams]}


@router.post("/teams", status_code=201, summary="Create a team (administrators only)")
def create_team(
    body: TeamIn, who: Principal = Depends(require_admin), state: AppState = Depends(app_state)
) -> dict[str, object]:
    with state.db.session() as s:
        team = accounts.create_team(s, body.name, actor=who.username)
        return {"name": team.name, "members": []}


@router.post("/teams/{team}/members", summary="Add a user to a team (administrators only)")
def add_team_member(
    team: str,
    body: TeamMemberIn,
    who: Principal = Depends(require_admin),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    with state.db.session() as s:
        found = accounts.get_team(s, team)
        accounts.add_team_member(s, found, accounts.get_user(s, body.user), actor=who.username)
        return {"team": team, "user": body.user}
