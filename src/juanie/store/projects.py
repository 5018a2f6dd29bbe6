"""Projects and environments: creation with the platform defaults, lifecycle transitions, each one an event."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from juanie.domain import events as kinds
from juanie.domain.environments import (
    APPROVALS,
    DEFAULT_ENVIRONMENTS,
    SIZES,
    namespace_for,
    restricted_by_default,
    validate_name,
)
from juanie.domain.errors import Conflict, Invalid, NotFound
from juanie.domain.lifecycle import ENVIRONMENT, PROJECT, IllegalTransition
from juanie.store.events import record
from juanie.store.models import Environment, Membership, Project, User


def create_project(
    session: Session,
    *,
    name: str,
    actor: User,
    description: str = "",
    repo_url: str = "",
    default_branch: str = "main",
    team: str = "",
    environments: list[dict[str, Any]] | None = None,
) -> Project:
    """A project with dev/staging/prod (or the given environments), its creator as owner, all in one transaction."""
    try:
        validate_name(name, "project name")
    except ValueError as exc:
        raise Invalid(str(exc), location="name") from None
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise Conflict(f"project {name!r} already exists", location="name")
    project = Project(
        name=name,
        description=description,
        repo_url=repo_url,
        default_branch=default_branch,
        team=team,
        status=PROJECT.initial,
        created_by=actor.username,
    )
    specs = environments if environments is not None else [_defaults_as_dict(d) for d in DEFAULT_ENVIRONMENTS]
    new_envs = [_new_environment(name, spec, order) for order, spec in enumerate(specs)]
    claimed: dict[str, str] = {}
    for order, env in enumerate(new_envs):
        _check_namespace_free(session, env.namespace, name, location=f"environments[{order}].namespace")
        if env.namespace in claimed:
            raise Conflict(f"namespace {env.namespace!r} is given to both {claimed[env.namespace]!r} and "
                           f"{env.name!r}; every environment needs its own",
                           location=f"environments[{order}].namespace")
        claimed[env.namespace] = env.name
    session.add(project)
    project.environments.extend(new_envs)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"project {name!r} already exists", location="name") from None
    session.add(Membership(project_id=project.id, user_id=actor.id, role="owner"))
    record(
        session,
        actor=actor.username,
        kind=kinds.PROJECT_CREATED,
        subject=f"project/{name}",
        project=name,
        data={"environments": [e.name for e in project.environments], "repo_url": _redact_url(repo_url)},
    )
    for env in project.environments:
        record(
            session,
            actor=actor.username,
            kind=kinds.ENVIRONMENT_CREATED,
            subject=f"environment/{name}/{env.name}",
            project=name,
            environment=env.name,
            data=environment_to_dict(env),
        )
    return project


def _defaults_as_dict(defaults: Any) -> dict[str, Any]:
    return {
        "name": defaults.name,
        "replicas": defaults.replicas,
        "size": defaults.size,
        "approval": defaults.approval,
        "branches": list(defaults.branches),
        "auto_deploy": defaults.auto_deploy,
        "strategy": defaults.strategy,
        "deploy_restricted": defaults.deploy_restricted,
    }


def _new_environment(project: str, spec: dict[str, Any], order: int) -> Environment:
    name = spec.get("name", "")
    try:
        validate_name(name, "environment name")
    except ValueError as exc:
        raise Invalid(str(exc), location=f"environments[{order}].name") from None
    env = Environment(name=name, namespace=spec.get("namespace") or namespace_for(project, name), order=order)
    apply_environment_fields(env, spec, location=f"environments[{order}]")
    if spec.get("deploy_restricted") is None:
        env.deploy_restricted = restricted_by_default(name, env.approval or "none")
    env.status = ENVIRONMENT.initial
    return env


def namespace_owner(session: Session, namespace: str) -> tuple[str, str] | None:
    """(project, environment) of the live environment that holds `namespace` in this installation, or None.

    A namespace belongs to exactly one environment: everything the engines run, route and log there is that
    environment's. A deleted environment gives its namespace back."""
    found = session.execute(
        select(Project.name, Environment.name)
        .join(Project, Project.id == Environment.project_id)
        .where(Environment.namespace == namespace, Environment.status != "deleted")
        .limit(1)
    ).first()
    return (found[0], found[1]) if found else None


def _check_namespace_free(session: Session, namespace: str, project: str, *, location: str) -> None:
    owner = namespace_owner(session, namespace)
    if owner is None:
        return
    if owner[0] == project:
        raise Conflict(f"namespace {namespace!r} is already used by environment {owner[1]!r} of this project",
                       location=location)
    raise Conflict(f"namespace {namespace!r} belongs to project {owner[0]!r} (environment {owner[1]!r}); "
                   "choose another namespace, or leave it out for <project>-<env>",
                   location=location, owner=owner[0])


_ENV_FIELDS = ("replicas", "size", "approval", "branches", "auto_deploy", "strategy", "deploy_restricted")


def apply_environment_fields(env: Environment, changes: dict[str, Any], *, location: str = "") -> list[str]:
    """Validate and set the changeable fields; returns the names that changed."""
    changed = []
    for key, value in changes.items():
        if key in ("name", "namespace") or value is None:
            continue
        if key not in _ENV_FIELDS:
            raise Invalid(f"unknown environment field {key!r}", location=f"{location}.{key}".strip("."))
        _check_env_value(key, value, f"{location}.{key}".strip("."))
        if getattr(env, key) != value:
            setattr(env, key, value)
            changed.append(key)
    return changed


def _check_env_value(key: str, value: Any, location: str) -> None:
    if key == "replicas" and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100):
        raise Invalid(f"replicas: expected an integer from 0 to 100, got {value!r}", location=location)
    if key == "size" and value not in SIZES:
        raise Invalid(f"size: expected one of S, M, L, got {value!r}", location=location)
    if key == "approval" and value not in APPROVALS:
        raise Invalid(f"approval: expected one of none, optional, required, got {value!r}", location=location)
    if key == "strategy" and value not in ("rolling", "blue-green", "canary"):
        raise Invalid(f"strategy: expected rolling, blue-green or canary, got {value!r}", location=location)
    if key == "branches" and (not isinstance(value, list) or not all(isinstance(b, str) for b in value)):
        raise Invalid("branches: expected a list of branch patterns", location=location)
    if key in ("auto_deploy", "deploy_restricted") and not isinstance(value, bool):
        raise Invalid(f"{key}: expected true or false, got {value!r}", location=location)


def get_project(session: Session, name: str) -> Project:
    project = session.scalar(
        select(Project).where(Project.name == name).options(selectinload(Project.environments))
    )
    if project is None:
        raise NotFound(f"project {name!r} not found", location="project")
    return project


def list_projects(
    session: Session,
    visible: frozenset[str] | None,
    *,
    include_archived: bool = True,
    limit: int = 500,
    offset: int = 0,
) -> list[Project]:
    stmt = select(Project).options(selectinload(Project.environments)).order_by(Project.name)
    if visible is not None:
        stmt = stmt.where(Project.name.in_(sorted(visible)))
    if not include_archived:
        stmt = stmt.where(Project.status != "archived")
    return list(session.scalars(stmt.limit(limit).offset(offset)))


def get_environment(session: Session, project: Project, env_name: str) -> Environment:
    for env in project.environments:
        if env.name == env_name:
            return env
    raise NotFound(f"environment {env_name!r} not found in project {project.name!r}", location="env")


def transition_project(
    session: Session, project: Project, target: str, *, actor: str, reason: str = ""
) -> None:
    try:
        PROJECT.check(project.status, target, project.name)
    except IllegalTransition as exc:
        raise Conflict(str(exc), location="status") from None
    previous, project.status = project.status, target
    project.status_message = reason
    record(
        session,
        actor=actor,
        kind=kinds.PROJECT_TRANSITIONED,
        subject=f"project/{project.name}",
        project=project.name,
        data={"from": previous, "to": target, "reason": reason},
    )


def transition_environment(
    session: Session, project: Project, env: Environment, target: str, *, actor: str, reason: str = ""
) -> None:
    try:
        ENVIRONMENT.check(env.status, target, f"{project.name}/{env.name}")
    except IllegalTransition as exc:
        raise Conflict(str(exc), location="status") from None
    previous, env.status = env.status, target
    env.status_message = reason
    record(
        session,
        actor=actor,
        kind=kinds.ENVIRONMENT_TRANSITIONED,
        subject=f"environment/{project.name}/{env.name}",
        project=project.name,
        environment=env.name,
        data={"from": previous, "to": target, "reason": reason},
    )


def add_environment(session: Session, project: Project, spec: dict[str, Any], *, actor: str) -> Environment:
    if any(e.name == spec.get("name") for e in project.environments):
        raise Conflict(
            f"environment {spec.get('name')!r} already exists in {project.name!r}", location="name"
        )
    env = _new_environment(project.name, spec, len(project.environments))
    _check_namespace_free(session, env.namespace, project.name, location="namespace")
    project.environments.append(env)
    session.flush()
    record(
        session,
        actor=actor,
        kind=kinds.ENVIRONMENT_CREATED,
        subject=f"environment/{project.name}/{env.name}",
        project=project.name,
        environment=env.name,
        data=environment_to_dict(env),
    )
    return env


def update_environment(
    session: Session, project: Project, env: Environment, changes: dict[str, Any], *, actor: str
) -> list[str]:
    """Change settings; a live environment goes active → updating until its controller has converged it."""
    if env.status in ("deleting", "deleted"):
        raise Conflict(f"environment {project.name}/{env.name} is {env.status}; it cannot be changed")
    changed = apply_environment_fields(env, changes)
    if not changed:
        return changed
    env.generation += 1
    record(
        session,
        actor=actor,
        kind=kinds.ENVIRONMENT_UPDATED,
        subject=f"environment/{project.name}/{env.name}",
        project=project.name,
        environment=env.name,
        data={"changed": {k: getattr(env, k) for k in changed}},
    )
    if env.status == "active":
        transition_environment(session, project, env, "updating", actor=actor, reason="settings changed")
    return changed


def environment_to_dict(env: Environment) -> dict[str, Any]:
    return {
        "name": env.name,
        "namespace": env.namespace,
        "replicas": env.replicas,
        "size": env.size,
        "approval": env.approval,
        "branches": list(env.branches or []),
        "auto_deploy": env.auto_deploy,
        "strategy": env.strategy,
        "deploy_restricted": env.deploy_restricted,
        "status": env.status,
    }


def project_to_dict(project: Project) -> dict[str, Any]:
    return {
        "name": project.name,
        "description": project.description,
        "repo_url": _redact_url(project.repo_url),
        "default_branch": project.default_branch,
        "gitops_url": _redact_url(project.gitops_url),
        "poll_interval_seconds": (project.settings or {}).get("poll_interval_seconds", 60),
        "team": project.team,
        "status": project.status,
        "status_message": project.status_message,
        "created_by": project.created_by,
        "created_at": project.created_at.isoformat() if project.created_at else None,
        "environments": [
            environment_to_dict(e) | {"status_message": e.status_message} for e in project.environments
        ],
    }


def _redact_url(url: str) -> str:
    """Credentials in a repository URL are a secret; show the URL without them."""
    if "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
