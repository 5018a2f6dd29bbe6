"""Who is looking at a page: the browser session behind the `juanie_session` cookie.

The API's middleware guards only `/api`; pages check the session here. Only *session* tokens count: an API
token pasted into a cookie by hand is not a browser session (and would bypass the CSRF pairing the UI uses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from juanie.api.auth import SESSION_COOKIE
from juanie.store import accounts


@dataclass(frozen=True)
class Viewer:
    user_id: int
    username: str
    display_name: str
    is_admin: bool
    token_id: int


class LoginRequired(Exception):
    """Raised by a page that needs a session; answered with a redirect to the login form."""

    def __init__(self, next_path: str):
        super().__init__(next_path)
        self.next_path = next_path


def viewer_for_token(db: Any, plaintext: str) -> Viewer | None:
    """The user behind a session token, or None when it is unknown, revoked, expired or not a session."""
    if not plaintext or len(plaintext) > 256:
        return None
    with db.session() as s:
        found = accounts.authenticate_token(s, plaintext)
        if found is None:
            return None
        user, token = found
        if token.kind != "session":
            return None
        return Viewer(user.id, user.username, user.display_name or user.username, user.is_admin, token.id)


async def current_viewer(request: Request) -> Viewer | None:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    return await run_in_threadpool(viewer_for_token, request.app.state.juanie.db, token)


def safe_next(path: str | None, default: str = "/") -> str:
    """A local path to return to after login or a language switch; anything else is refused."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return default
    if any(ord(c) < 32 for c in path):
        return default
    return path


def login_url(next_path: str) -> str:
    return "/login?next=" + quote(safe_next(next_path), safe="/")


async def require_viewer(request: Request) -> Viewer:
    """A page dependency: the signed-in viewer, or a redirect to the login form that comes back here."""
    viewer = await current_viewer(request)
    if viewer is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return viewer
