"""What the pages read from the store, in a fixed, small number of queries per page (never one per row).

The home page with a thousand projects costs the same five queries as with three: one page of projects, their
environments in one batch, the newest deployment of each environment in one batch, and the "needs me" lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from juanie.domain.rbac import Role, env_permission, role_allows
from juanie.store import accounts
from juanie.store import models as m
from juanie.store import projects as project_store

PER_PAGE = 48
NEEDS_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class DeploySummary:
    id: int
    release: str
    status: str
    strategy: str
    actor: str
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class EnvCard:
    name: str
    namespace: str
    status: str
    status_message: str
    replicas: int
    size: str
    strategy: str
    approval: str
    branches: list[str]
    auto_deploy: bool
    deploy_restricted: bool
    last_deploy: DeploySummary | None
    permission: str = "read"


@dataclass(frozen=True)
class ProjectCard:
    name: str
    description: str
    status: str
    team: str
    updated_at: datetime | None
    environments: list[EnvCard]


@dataclass(frozen=True)
class NeedsItem:
    kind: str  # failed_environment | failed_deployment | failed_run | approval
    project: str
    environment: str | None
    title: str
    at: datetime | None
    href: str


@dataclass
class HomeData:
    cards: list[ProjectCard]
    total: int
    page: int
    pages: int
    query: str
    needs: list[NeedsItem] = field(default_factory=list)


def _latest_deploys(session: Session, env_ids: list[int]) -> dict[int, DeploySummary]:
    if not env_ids:
        return {}
    newest = (
        select(func.max(m.Deployment.id))
        .where(m.Deployment.environment_id.in_(env_ids))
        .group_by(m.Deployment.environment_id)
    )
    rows = session.scalars(select(m.Deployment).where(m.Deployment.id.in_(newest)))
    return {d.environment_id: _deploy_summary(d) for d in rows}


def _deploy_summary(d: m.Deployment) -> DeploySummary:
    return DeploySummary(d.id, d.release, d.status, d.strategy, d.actor, d.created_at, d.finished_at)


def _env_card(env: m.Environment, last: DeploySummary | None, permission: str = "read") -> EnvCard:
    return EnvCard(
        name=env.name,
        namespace=env.namespace,
        status=env.status,
        status_message=env.status_message,
        replicas=env.replicas,
        size=env.size,
        strategy=env.strategy,
        approval=env.approval,
        branches=list(env.branches or []),
        auto_deploy=env.auto_deploy,
        deploy_restricted=env.deploy_restricted,
        last_deploy=last,
        permission=permission,
    )


def _visible_clause(visible: frozenset[str] | None) -> Any:
    return m.Project.name.in_(sorted(visible)) if visible is not None else None


def home(
    session: Session,
    visible: frozenset[str] | None,
    *,
    query: str = "",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> HomeData:
    """One page of the projects the viewer may see (archived ones last), each with its environments."""
    stmt = select(m.Project)
    count = select(func.count()).select_from(m.Project)
    clause = _visible_clause(visible)
    if clause is not None:
        stmt, count = stmt.where(clause), count.where(clause)
    needle = query.strip()[:64]
    if needle:
        like = f"%{needle.replace('%', '').replace('_', '')}%"
        match = or_(m.Project.name.ilike(like), m.Project.description.ilike(like), m.Project.team.ilike(like))
        stmt, count = stmt.where(match), count.where(match)
    total = session.scalar(count) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    archived_last = (m.Project.status == "archived").label("archived_last")
    projects = list(
        session.scalars(
            stmt.options(selectinload(m.Project.environments))
            .order_by(archived_last, m.Project.name)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    )
    latest = _latest_deploys(session, [e.id for p in projects for e in p.environments])
    cards = [
        ProjectCard(
            p.name,
            p.description,
            p.status,
            p.team,
            p.updated_at,
            [_env_card(e, latest.get(e.id)) for e in p.environments],
        )
        for p in projects
    ]
    return HomeData(cards, total, page, pages, needle, needs_me(session, visible))


def needs_me(session: Session, visible: frozenset[str] | None, limit: int = 8) -> list[NeedsItem]:
    """What wants attention: environments that failed, deployments and pipeline runs that failed recently."""
    since = datetime.now(UTC) - NEEDS_WINDOW
    clause = _visible_clause(visible)
    items: list[NeedsItem] = []
    envs = (
        select(m.Environment, m.Project.name)
        .join(m.Project, m.Project.id == m.Environment.project_id)
        .where(m.Environment.status == "failed")
        .order_by(m.Environment.updated_at.desc())
        .limit(limit)
    )
    for env, project in session.execute(envs.where(clause) if clause is not None else envs):
        items.append(
            NeedsItem(
                "failed_environment",
                project,
                env.name,
                env.status_message,
                env.updated_at,
                f"/projects/{project}",
            )
        )
    deploys = (
        select(m.Deployment, m.Project.name, m.Environment.name)
        .join(m.Project, m.Project.id == m.Deployment.project_id)
        .join(m.Environment, m.Environment.id == m.Deployment.environment_id)
        .where(m.Deployment.status.in_(("failed", "rolled_back")), m.Deployment.updated_at >= since)
        .order_by(m.Deployment.id.desc())
        .limit(limit)
    )
    for dep, project, env_name in session.execute(deploys.where(clause) if clause is not None else deploys):
        items.append(
            NeedsItem(
                "failed_deployment",
                project,
                env_name,
                dep.release or dep.status_message,
                dep.updated_at,
                f"/projects/{project}",
            )
        )
    run_model = getattr(m, "PipelineRun", None)
    if run_model is not None:
        runs = (
            select(run_model, m.Project.name)
            .join(m.Project, m.Project.id == run_model.project_id)
            .where(run_model.status == "failed", run_model.created_at >= since)
            .order_by(run_model.id.desc())
            .limit(limit)
        )
        for run, project in session.execute(runs.where(clause) if clause is not None else runs):
            items.append(
                NeedsItem(
                    "failed_run",
                    project,
                    run.target_env,
                    f"#{run.number} {run.branch}".strip(),
                    run.finished_at or run.created_at,
                    f"/projects/{project}",
                )
            )
    items.sort(key=lambda item: item.at or datetime.min.replace(tzinfo=UTC), reverse=True)
    return items[:limit]


@dataclass
class ProjectData:
    name: str
    description: str
    status: str
    status_message: str
    repo_url: str
    default_branch: str
    team: str
    created_by: str
    created_at: datetime | None
    role: str | None
    can: dict[str, bool]
    environments: list[EnvCard]
    deployments: list[tuple[str, DeploySummary]]
    runs: list[dict[str, Any]]
    members: list[dict[str, str | None]]
    grants: dict[str, list[dict[str, str | None]]]


def project_page(session: Session, name: str, user: m.User) -> ProjectData | None:
    """Everything the environment board shows, or None if the project is missing or hidden from `user`."""
    project = session.scalar(
        select(m.Project).where(m.Project.name == name).options(selectinload(m.Project.environments))
    )
    if project is None:
        return None
    role = accounts.project_role(session, user, project)
    if role is None and not user.is_admin:
        return None
    envs = project.environments
    latest = _latest_deploys(session, [e.id for e in envs])
    env_names = {e.id: e.name for e in envs}
    cards = []
    grants: dict[str, list[dict[str, str | None]]] = {}
    for env in envs:
        effective = env_permission(
            role,
            accounts.env_grants_for(session, user, env),
            restricted=env.deploy_restricted,
            is_admin=user.is_admin,
        )
        cards.append(_env_card(env, latest.get(env.id), effective.name))
        grants[env.name] = accounts.list_env_grants(session, env)
    recent = session.scalars(
        select(m.Deployment).where(m.Deployment.project_id == project.id).order_by(m.Deployment.id.desc()).limit(10)
    )
    deployments = [(env_names.get(d.environment_id, "?"), _deploy_summary(d)) for d in recent]
    return ProjectData(
        name=project.name,
        description=project.description,
        status=project.status,
        status_message=project.status_message,
        repo_url=project_store.project_to_dict(project)["repo_url"],
        default_branch=project.default_branch,
        team=project.team,
        created_by=project.created_by,
        created_at=project.created_at,
        role=role.name if role else None,
        can=abilities(role, user.is_admin, project.status),
        environments=cards,
        deployments=deployments,
        runs=_recent_runs(session, project.id),
        members=accounts.list_members(session, project),
        grants=grants,
    )


def abilities(role: Role | None, is_admin: bool, status: str) -> dict[str, bool]:
    """Which controls to show. The API enforces the same rules; hiding a button is a courtesy only."""
    writable = status != "archived"
    return {
        "update": writable and role_allows(role, "project.update", is_admin=is_admin),
        "manage_members": writable and role_allows(role, "members.manage", is_admin=is_admin),
        "manage_environments": writable and role_allows(role, "environments.manage", is_admin=is_admin),
        "suspend": writable and role_allows(role, "project.suspend", is_admin=is_admin),
        "archive": writable and role_allows(role, "project.archive", is_admin=is_admin),
        "run_pipelines": writable and role_allows(role, "pipelines.run", is_admin=is_admin),
    }


def _recent_runs(session: Session, project_id: int, limit: int = 8) -> list[dict[str, Any]]:
    run_model = getattr(m, "PipelineRun", None)
    if run_model is None:
        return []
    rows = session.scalars(
        select(run_model).where(run_model.project_id == project_id).order_by(run_model.id.desc()).limit(limit)
    )
    return [
        {
            "id": r.id,
            "number": r.number,
            "branch": r.branch,
            "commit": r.commit_sha,
            "status": r.status,
            "created_at": r.created_at,
            "target_env": r.target_env,
        }
        for r in rows
    ]
