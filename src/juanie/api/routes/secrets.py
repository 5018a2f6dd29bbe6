"""Secrets: write-only. Responses carry names, scopes and versions, never values."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from juanie.api.auth import Principal, ProjectAccess, require
from juanie.api.schemas import SecretIn
from juanie.api.state import AppState, app_state
from juanie.domain.errors import Forbidden
from juanie.domain.rbac import EnvPermission, env_permission
from juanie.store import accounts
from juanie.store import projects as store
from juanie.store import secrets as secret_store
from juanie.store.models import Environment, Project

router = APIRouter(prefix="/api/projects/{project}/secrets", tags=["secrets"])
EnvQuery = Query(None, description="environment name; omit for a project-wide secret", max_length=40)


@contextmanager
def _secrets_of(
    state: AppState, project: str, env: str | None, who: Principal, need: EnvPermission
) -> Iterator[tuple[Session, Project, Environment | None]]:
    """A transaction on the secrets of `project`, or of its environment `env` when one is named.

    The route's `require` has checked the project role; an environment's secrets also need `need` on that
    environment (its grants and deploy restriction count), checked here so every secrets route asks alike.
    """
    with state.db.session() as s:
        found = store.get_project(s, project)
        environment = None if env is None else store.get_environment(s, found, env)
        if environment is not None:
            user = accounts.get_user(s, who.username)
            effective = env_permission(
                accounts.project_role(s, user, found),
                accounts.env_grants_for(s, user, environment),
                restricted=environment.deploy_restricted,
                is_admin=who.is_admin,
            )
            if effective < need:
                raise Forbidden(f"changing secrets of {project}/{env} needs {need.name} on that environment")
        yield s, found, environment


@router.get("", summary="Secret names, scopes and versions")
def list_secrets(
    project: str,
    env: str | None = EnvQuery,
    access: ProjectAccess = require("secrets.read_names"),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    with _secrets_of(state, project, env, access.who, EnvPermission.read) as (s, found, environment):
        return {"items": secret_store.list_secrets(s, found, environment)}


@router.put("/{name}", summary="Set a secret (the value is encrypted and never shown again)")
def set_secret(
    project: str,
    name: str,
    body: SecretIn,
    env: str | None = EnvQuery,
    access: ProjectAccess = require("secrets.write"),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    with _secrets_of(state, project, env, access.who, EnvPermission.admin) as (s, found, environment):
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
    with _secrets_of(state, project, env, access.who, EnvPermission.admin) as (s, found, environment):
        secret_store.delete_secret(s, found, environment, name, actor=access.who.username)
        return {"name": name, "scope": env or "project", "deleted": True}
