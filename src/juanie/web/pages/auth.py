"""Signing in and out, and the language switch.

Password sign-in goes straight to the API (`POST /api/auth/login` with `{"session": true}`). A pasted API
token is exchanged here for a browser session: the API middleware authenticates the bearer token, this route
issues a session token for the same user and sets the same cookies the password login sets.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from juanie.api.auth import CSRF_COOKIE, SESSION_COOKIE, Principal, principal
from juanie.api.state import AppState, app_state
from juanie.domain import events as kinds
from juanie.domain.credentials import new_token
from juanie.domain.errors import Forbidden
from juanie.store import accounts
from juanie.store.events import record
from juanie.web import i18n
from juanie.web.render import page
from juanie.web.session import current_viewer, safe_next

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/ui", tags=["ui"])
SESSION_TTL = timedelta(hours=12)
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/") -> Response:
    target = safe_next(next)
    if await current_viewer(request) is not None:
        return RedirectResponse(target, status_code=303)
    return page(request, "login.html", None, next=target)


@router.get("/lang")
def switch_language(request: Request, to: str = "", next: str = "/") -> Response:
    """Remember the chosen language in a cookie and go back; an unknown language gets a clear 400."""
    chosen = i18n.normalize(to)
    target = safe_next(next)
    if chosen is None:
        return JSONResponse(
            {
                "error": {
                    "code": "invalid_request",
                    "message": f"unknown language {to[:20]!r}; expected en or zh_CN",
                }
            },
            status_code=400,
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        i18n.LANG_COOKIE,
        chosen,
        max_age=LANG_COOKIE_MAX_AGE,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@api_router.post("/session", summary="Exchange the bearer API token of this request for a browser session")
def token_to_session(request: Request, state: AppState = Depends(app_state)) -> JSONResponse:
    who: Principal = principal(request)
    if who.via != "token":
        raise Forbidden("send an API token as 'Authorization: Bearer <token>' to start a browser session")
    client = request.client.host if request.client else ""
    with state.db.session() as s:
        user = accounts.get_user(s, who.username)
        token, plaintext = accounts.issue_token(s, user, "web (from API token)", kind="session", ttl=SESSION_TTL)
        record(
            s,
            actor=who.username,
            kind=kinds.LOGIN_SUCCEEDED,
            subject=f"user/{who.username}",
            data={"client": client, "token": token.prefix, "kind": "session", "via": "api_token"},
        )
    response = JSONResponse({"username": who.username})
    secure = request.url.scheme == "https"
    max_age = int(SESSION_TTL.total_seconds())
    response.set_cookie(SESSION_COOKIE, plaintext, httponly=True, samesite="strict", secure=secure, max_age=max_age)
    response.set_cookie(CSRF_COOKIE, new_token(), httponly=False, samesite="strict", secure=secure, max_age=max_age)
    return response
