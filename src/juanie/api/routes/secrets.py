"""Secrets: write-only. Responses carry names, scopes and versions, never values."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from juanie.api.auth import ProjectAccess, require
from juanie.api.schemas import SecretIn
from juanie.api.state import AppState, app_state
from juanie.domain.errors import Forbidden
from juanie.domain.rbac import EnvPermission, env_permission
from juanie.store import accounts
from juanie.store import projects as store
from juanie.store import secrets as secret_store

router = APIRouter(prefix="/api/projects/{project}/secrets", tags=["secrets"])
EnvQuery = Query(None, description="environment name; omit for a project-wide secret", max_length=40)


def _scope(s, project: str, env: str | None, who, need: EnvPermission):  # type: ignore[no-untyped-def]
    found = store.get_project(s, project)
    if env is None:
        return found, None
    environment = store.get_environment(s, found, env)
    user = accounts.get_user(s, who.username)
    effective = env_permission(
        accounts.project_role(s, user, found),
        accounts.env_grants_for(s, user, environment),
        restricted=environment.deploy_restricted,
        is_admin=who.is_admin,
    )
    if effective < need:
        raise Forbidden(f"changing secrets of {project}/{env} needs {need.name} on that environment")
    return found, environment


@router.get("", summary="Secret names, scopes and versions")
def list_secrets(
    project: str,
    env: str | None = EnvQuery,
    access: ProjectAccess = require("secrets.read_names"),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    with state.db.session() as s:
        found, environment = _scope(s, project, env, access.who, EnvPermission.read)
        return {"items": secret_store.list_secrets(s, found, environment)}


@router.put("/{name}", summary="Set a secret (the value is encrypted and never shown again)")
def set_secret(
    project: str,
    name: str,
    body: SecretIn,
    request: Request,
    env: str | None = EnvQuery,
    access: ProjectAccess = require("secrets.write"),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    with state.db.session() as s:
        found, environment = _scope(s, project, env, access.who, EnvPermission.admin)
        secret = secret_store.set_secret(
            s, state.box, found, environment, name, body.value, actor=access.who.username
        )
        return {
            "name": secret.name,
            "scope": env or "project",
            "version": secret.version,
            "updated_by": secret.updated_by,
        }


@router.delete("/{name}", summary="Delete a secret")
def delete_secret(
    project: str,
    name: str,
    env: str | None = EnvQuery,
    access: ProjectAccess = require("secrets.write"),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    with state.db.session() as s:
        found, environment = _scope(s, project, env, access.who, EnvPermission.admin)
        secret_store.delete_secret(s, found, environment, name, actor=access.who.username)
        return {"name": name, "scope": env or "project", "deleted": True}
