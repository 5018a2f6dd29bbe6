"""Projects, their environments, members and environment grants."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session

from juanie.api.auth import ProjectAccess, principal, require, require_env
from juanie.api.schemas import (
    ROW_ID_MAX,
    EnvironmentIn,
    EnvironmentPatch,
    GrantIn,
    MemberIn,
    ProjectIn,
    ProjectPatch,
    TransitionIn,
)
from juanie.api.state import AppState, app_state
from juanie.controllers.environments import NAME as ENV_CONTROLLER
from juanie.domain import events as kinds
from juanie.domain.errors import Conflict, Invalid
from juanie.domain.rbac import EnvPermission, Role
from juanie.gitops.locations import RepoLocations
from juanie.store import accounts
from juanie.store import projects as store
from juanie.store.events import record
from juanie.store.models import Environment, Project

router = APIRouter(prefix="/api/projects", tags=["projects"])


def _nudge(state: AppState, project: str, envs: list[str]) -> None:
    for env in envs:
        state.runner.enqueue(ENV_CONTROLLER, (project, env))


def _check_locations(state: AppState, urls: dict[str, object], is_admin: bool) -> None:
    """A local path as a repository: admins only, under JUANIE_LOCAL_REPO_ROOTS, never the data directory."""
    locations = RepoLocations(state.settings.data_dir, state.settings.local_repo_roots)
    for field, url in urls.items():
        if isinstance(url, str) and url:
            locations.check(url, field=field, is_admin=is_admin)


def _project_env(s: Session, project: str, env: str) -> tuple[Project, Environment]:
    """The project and its environment `env`, or NotFound for whichever is missing (the project first)."""
    found = store.get_project(s, project)
    return found, store.get_environment(s, found, env)


@router.get("", summary="Projects you can see")
def list_projects(
    request: Request,
    include_archived: bool = True,
    limit: int = Query(500, ge=1, le=5000),
    offset: int = Query(0, ge=0, le=ROW_ID_MAX),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    who = principal(request)
    with state.db.session() as s:
        user = accounts.get_user(s, who.username)
        visible = accounts.visible_projects(s, user)
        items = store.list_projects(s, visible, include_archived=include_archived, limit=limit, offset=offset)
        return {"items": [store.project_to_dict(p) for p in items]}


@router.post("", status_code=201, summary="Create a project (with dev, staging and prod unless given)")
def create_project(
    body: ProjectIn, request: Request, state: AppState = Depends(app_state)
) -> dict[str, object]:
    who = principal(request)
    _check_locations(state, {"repo_url": body.repo_url}, who.is_admin)
    with state.db.session() as s:
        user = accounts.get_user(s, who.username)
        envs = [e.model_dump() for e in body.environments] if body.environments is not None else None
        project = store.create_project(
            s,
            name=body.name,
            actor=user,
            description=body.description,
            repo_url=body.repo_url,
            default_branch=body.default_branch,
            team=body.team,
            environments=envs,
        )
        result = store.project_to_dict(project)
    _nudge(state, body.name, [e["name"] for e in result["environments"]])  # type: ignore[index, union-attr]
    return result


@router.get("/{project}", summary="One project with its environments")
def get_project(
    project: str, access: ProjectAccess = require("project.read"), state: AppState = Depends(app_state)
) -> dict[str, object]:
    with state.db.session() as s:
        return store.project_to_dict(store.get_project(s, project)) | {
            "your_role": access.role.name if access.role else ("admin" if access.who.is_admin else None)
        }


@router.patch("/{project}", summary="Change a project's settings")
def update_project(
    project: str,
    body: ProjectPatch,
    access: ProjectAccess = require("project.update"),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    with state.db.session() as s:
        found = store.get_project(s, project)
        fields = body.model_dump(exclude_none=True)
        interval = fields.pop("poll_interval_seconds", None)
        changes = {k: v for k, v in fields.items() if getattr(found, k) != v}
        _check_locations(state, {k: v for k, v in changes.items() if k in ("repo_url", "gitops_url")},
                         access.who.is_admin)
        for key, value in changes.items():
            setattr(found, key, value)
        if interval is not None and (found.settings or {}).get("poll_interval_seconds") != interval:
            found.settings = {**(found.settings or {}), "poll_interval_seconds": interval}
            changes["poll_interval_seconds"] = interval
        if changes:
            record(
                s,
                actor=access.who.username,
                kind=kinds.PROJECT_UPDATED,
                subject=f"project/{project}",
                project=project,
                data={"changed": sorted(changes)},
            )
        return store.project_to_dict(found)


def _transition(
    state: AppState, project: str, target: str, actor: str, reason: str, expect_from: str | None = None
) -> dict[str, object]:
    with state.db.session() as s:
        found = store.get_project(s, project)
        if expect_from and found.status != expect_from:
            raise Conflict(f"project {project!r} is {found.status}, not {expect_from}; nothing to {target}")
        store.transition_project(s, found, target, actor=actor, reason=reason)
        return store.project_to_dict(found)


@router.post("/{project}/archive", summary="Archive a project (read-only from then on)")
def archive_project(
    project: str,
    body: TransitionIn | None = None,
    access: ProjectAccess = require("project.archive"),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    return _transition(state, project, "archived", access.who.username, body.reason if body else "")


@router.post("/{project}/suspend", summary="Suspend a project (no pipelines or deploys)")
def suspend_project(
    project: str,
    body: TransitionIn | None = None,
    access: ProjectAccess = require("project.suspend"),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    return _transition(state, project, "suspended", access.who.username, body.reason if body else "")


@router.post("/{project}/resume", summary="Resume a suspended project")
def resume_project(
    project: str,
    body: TransitionIn | None = None,
    access: ProjectAccess = require("project.suspend"),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    return _transition(
        state, project, "active", access.who.username, body.reason if body else "", expect_from="suspended"
    )


@router.get("/{project}/environments", tags=["environments"], summary="The project's environments")
def list_environments(
    project: str, access: ProjectAccess = require("project.read"), state: AppState = Depends(app_state)
) -> dict[str, object]:
    with state.db.session() as s:
        found = store.get_project(s, project)
        return {
            "items": [
                store.environment_to_dict(e) | {"status_message": e.status_message}
                for e in found.environments
            ]
        }


@router.post("/{project}/environments", status_code=201, tags=["environments"], summary="Add an environment")
def create_environment(
    project: str,
    body: EnvironmentIn,
    access: ProjectAccess = require("environments.manage"),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    with state.db.session() as s:
        env = store.add_environment(
            s, store.get_project(s, project), body.model_dump(), actor=access.who.username
        )
        result = store.environment_to_dict(env)
    _nudge(state, project, [body.name])
    return result


@router.get("/{project}/environments/{env}", tags=["environments"], summary="One environment")
def get_environment(
    project: str,
    env: str,
    access: ProjectAccess = require_env(EnvPermission.read),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    with state.db.session() as s:
        _, environment = _project_env(s, project, env)
        return store.environment_to_dict(environment) | {
            "status_message": environment.status_message,
            "grants": accounts.list_env_grants(s, environment),
        }


@router.patch(
    "/{project}/environments/{env}", tags=["environments"], summary="Change an environment's settings"
)
def update_environment(
    project: str,
    env: str,
    body: EnvironmentPatch,
    access: ProjectAccess = require_env(EnvPermission.admin),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    with state.db.session() as s:
        found, environment = _project_env(s, project, env)
        store.update_environment(
            s, found, environment, body.model_dump(exclude_none=True), actor=access.who.username
        )
        result = store.environment_to_dict(environment)
    _nudge(state, project, [env])
    return result


@router.delete("/{project}/environments/{env}", tags=["environments"], summary="Delete an environment")
def delete_environment(
    project: str,
    env: str,
    access: ProjectAccess = require_env(EnvPermission.admin),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    with state.db.session() as s:
        found, environment = _project_env(s, project, env)
        store.transition_environment(
            s, found, environment, "deleting", actor=access.who.username, reason="deleted through the API"
        )
        result = store.environment_to_dict(environment)
    _nudge(state, project, [env])
    return result


@router.get("/{project}/members", tags=["members"], summary="Who has which role on the project")
def list_members(
    project: str, access: ProjectAccess = require("project.read"), state: AppState = Depends(app_state)
) -> dict[str, object]:
    with state.db.session() as s:
        return {"items": accounts.list_members(s, store.get_project(s, project))}


def _user_or_team(s, user: str | None, team: str | None):  # type: ignore[no-untyped-def]
    if bool(user) == bool(team):
        raise Invalid("name exactly one of user or team", location="user")
    return (accounts.get_user(s, user) if user else None), (accounts.get_team(s, team) if team else None)


@router.put("/{project}/members", tags=["members"], summary="Give a user or team a role on the project")
def set_member(
    project: str,
    body: MemberIn,
    access: ProjectAccess = require("members.manage"),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    with state.db.session() as s:
        found = store.get_project(s, project)
        user, team = _user_or_team(s, body.user, body.team)
        accounts.set_membership(
            s, found, role=Role.parse(body.role), user=user, team=team, actor=access.who.username
        )
        return {"items": accounts.list_members(s, found)}


@router.delete("/{project}/members/{kind}/{name}", tags=["members"], summary="Remove a user or team")
def remove_member(
    project: str,
    kind: str,
    name: str,
    access: ProjectAccess = require("members.manage"),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    if kind not in ("user", "team"):
        raise Invalid("kind must be 'user' or 'team'", location="kind")
    with state.db.session() as s:
        found = store.get_project(s, project)
        user, team = _user_or_team(s, name if kind == "user" else None, name if kind == "team" else None)
        accounts.remove_membership(s, found, user=user, team=team, actor=access.who.username)
        return {"items": accounts.list_members(s, found)}


@router.put(
    "/{project}/environments/{env}/grants",
    tags=["environments"],
    summary="Grant a user or team a permission on one environment",
)
def set_grant(
    project: str,
    env: str,
    body: GrantIn,
    access: ProjectAccess = require("members.manage"),
    state: AppState = Depends(app_state),
) -> dict[str, object]:
    with state.db.session() as s:
        found, environment = _project_env(s, project, env)
        user, team = _user_or_team(s, body.user, body.team)
        accounts.set_env_grant(
            s,
            found,
            environment,
            permission=EnvPermission.parse(body.permission),
            user=user,
            team=team,
            actor=access.who.username,
        )
        return {"items": accounts.list_env_grants(s, environment)}
