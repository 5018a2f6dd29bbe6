"""Authentication at the door, authorisation per route.

A pure ASGI middleware authenticates every `/api` request (and `/metrics`) before routing, parsing or validation, so
an anonymous caller learns nothing but 401. Handlers then declare what they need with `require(action)` or
`require_env(permission)`, which run before the body is validated, so a caller without the role gets 403 whatever
they sent.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from juanie.api.errors import error_response
from juanie.domain.errors import Conflict, Forbidden, NotFound, Unauthorized
from juanie.domain.rbac import PROJECT_ACTIONS, EnvPermission, Role, env_permission, role_allows
from juanie.store import accounts
from juanie.store import projects as project_store
from juanie.store.models import User

SESSION_COOKIE = "juanie_session"
CSRF_COOKIE = "juanie_csrf"
CSRF_HEADER = "x-csrf-token"
PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/api/openapi.json", "/api/docs", "/api/docs/oauth2-redirect"}
)
SIGNED_PATHS = frozenset({"/api/hooks/git"})  # authenticated by their payload signature, checked by the route
LOGIN_PATH = "/api/auth/login"

bearer_scheme = HTTPBearer(
    auto_error=False, description="An API token (`juanie login` or Settings → Tokens)."
)


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    is_admin: bool
    token_id: int
    via: str  # "token" | "session"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _guarded(path: str) -> bool:
    return (path.startswith("/api/") or path == "/metrics") and path not in PUBLIC_PATHS and path not in SIGNED_PATHS


class AuthMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state.juanie
        authorization = _header(scope, b"authorization") or ""
        scheme, _, credential = authorization.partition(" ")
        principal: Principal | None = None
        if scheme.lower() == "bearer" and credential:
            principal = await run_in_threadpool(_from_token, state.db, credential.strip(), "token")
        elif scope["path"] == LOGIN_PATH and scheme.lower() == "basic":
            await self.app(scope, receive, send)  # the login route checks the password itself
            return
        elif not authorization:
            cookies = SimpleCookie(_header(scope, b"cookie") or "")
            if SESSION_COOKIE in cookies:
                principal = await run_in_threadpool(
                    _from_token, state.db, cookies[SESSION_COOKIE].value, "session"
                )
                if principal and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
                    sent = _header(scope, CSRF_HEADER.encode()) or ""
                    expected = cookies[CSRF_COOKIE].value if CSRF_COOKIE in cookies else ""
                    if not expected or not hmac.compare_digest(sent, expected):
                        response = error_response(
                            403, "csrf", "missing or wrong CSRF token for a session request"
                        )
                        await response(scope, receive, send)
                        return
        if principal is None:
            response = error_response(
                401,
                "unauthorized",
                "authentication required: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="juanie"'},
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def _from_token(db: Any, plaintext: str, via: str) -> Principal | None:
    with db.session() as s:
        found = accounts.authenticate_token(s, plaintext)
        if found is None:
            return None
        user, token = found
        if via == "session" and token.kind != "session":
            return None
        return Principal(user.id, user.username, user.is_admin, token.id, via)


def principal(request: Request) -> Principal:
    found = request.scope.get("state", {}).get("principal")
    if found is None:  # only reachable if a route is mounted outside the guarded paths
        raise Unauthorized("authentication required")
    return found


def require_admin(request: Request) -> Principal:
    who = principal(request)
    if not who.is_admin:
        raise Forbidden("this needs a site administrator")
    return who


@dataclass(frozen=True)
class ProjectAccess:
    who: Principal
    project: str
    role: Role | None


def _load_user(s: Any, who: Principal) -> User:
    user = s.get(User, who.user_id)
    if user is None:
        raise Unauthorized("the token's user no longer exists")
    return user


def require(action: str, *, writable: bool | None = None):  # type: ignore[no-untyped-def]
    """A dependency: the caller must hold `action` on the project named by the `project` path parameter.

    Mutating actions also refuse an archived project (it is read-only) with 409.
    """
    mutating = (
        writable if writable is not None else not action.endswith(".read") and action != "secrets.read_names"
    )

    def check(request: Request) -> ProjectAccess:
        who = principal(request)
        name = request.path_params.get("project", "")
        db = request.app.state.juanie.db
        with db.session() as s:
            project = project_store.get_project(s, name)
            role = accounts.project_role(s, _load_user(s, who), project)
            if role is None and not who.is_admin:
                # Not a member: do not reveal whether the project exists.
                raise NotFound(f"project {name!r} not found", location="project")
            if not role_allows(role, action, is_admin=who.is_admin):
                need = PROJECT_ACTIONS[action].name
                raise Forbidden(
                    f"{action} on project {name!r} needs the {need} role; you are "
                    f"{role.name if role else 'not a member'}"
                )
            if mutating and project.status == "archived" and action != "project.read":
                raise Conflict(f"project {name!r} is archived and read-only")
        return ProjectAccess(who, name, role)

    return Depends(check)


def require_env(permission: EnvPermission):  # type: ignore[no-untyped-def]
    """A dependency: the caller must hold `permission` on the environment named by the `env` path parameter."""

    def check(request: Request) -> ProjectAccess:
        who = principal(request)
        name, env_name = request.path_params.get("project", ""), request.path_params.get("env", "")
        db = request.app.state.juanie.db
        with db.session() as s:
            project = project_store.get_project(s, name)
            user = _load_user(s, who)
            role = accounts.project_role(s, user, project)
            if role is None and not who.is_admin:
                raise NotFound(f"project {name!r} not found", location="project")
            env = project_store.get_environment(s, project, env_name)
            effective = env_permission(
                role,
                accounts.env_grants_for(s, user, env),
                restricted=env.deploy_restricted,
                is_admin=who.is_admin,
            )
            if effective < permission:
                raise Forbidden(
                    f"{permission.name} on environment {name}/{env_name} is not granted to you "
                    f"(you have {effective.name})"
                )
            if permission > EnvPermission.read and project.status == "archived":
                raise Conflict(f"project {name!r} is archived and read-only")
        return ProjectAccess(who, name, role)

    return Depends(check)


def parse_basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, _, password = base64.b64decode(value.strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return username, password
