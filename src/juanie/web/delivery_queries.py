"""What the pipeline, release and deployment pages read from the store, in a few queries per page.

Every loader checks first that the viewer may see the project (a member, or a site administrator) and returns
None otherwise, so a page answers 404 for both "missing" and "hidden" and never tells an outsider which is true.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from juanie.domain.rbac import Role, env_permission, role_allows
from juanie.store import accounts
from juanie.store import deployments as deploy_store
from juanie.store import models as m
from juanie.store import pipelines as run_store


@dataclass(frozen=True)
class ProjectAccess:
    project: m.Project
    role: Role | None
    is_admin: bool

    def allows(self, action: str) -> bool:
        return self.project.status != "archived" and role_allows(self.role, action, is_admin=self.is_admin)


def project_access(session: Session, user: m.User, name: str) -> ProjectAccess | None:
    project = session.scalar(select(m.Project).where(m.Project.name == name))
    if project is None:
        return None
    role = accounts.project_role(session, user, project)
    if role is None and not user.is_admin:
        return None
    return ProjectAccess(project, role, user.is_admin)


def env_access(session: Session, user: m.User, access: ProjectAccess, env: m.Environment) -> str:
    """The viewer's effective permission on one environment: read, deploy or admin (or none)."""
    return env_permission(
        access.role,
        accounts.env_grants_for(session, user, env),
        restricted=env.deploy_restricted,
        is_admin=user.is_admin,
    ).name


@dataclass(frozen=True)
class ApprovalView:
    id: int
    deployment_id: int
    mode: str
    status: str
    expires_at: Any


@dataclass
class EnvExtras:
    """What the board adds to an environment column: what runs there and what is going on."""

    release: str = ""
    commit: str = ""
    active_id: int | None = None
    active_status: str = ""
    active_release: str = ""
    approval: ApprovalView | None = None


@dataclass
class BoardExtras:
    releases: list[dict[str, Any]] = field(default_factory=list)
    envs: dict[str, EnvExtras] = field(default_factory=dict)


def board_extras(session: Session, project: m.Project, release_limit: int = 10) -> BoardExtras:
    """Releases (newest first) and, per environment, its current release and commit, the active deployment and
    a waiting approval. Four queries however many environments there are."""
    releases = run_store.list_releases(session, project, release_limit)
    numbers = dict(
        session.execute(
            select(m.PipelineRun.id, m.PipelineRun.number).where(
                m.PipelineRun.id.in_([r.run_id for r in releases if r.run_id])
            )
        ).all()
    )
    release_dicts = [
        run_store.release_to_dict(r, project.name, numbers.get(r.run_id)) | {"run_id": r.run_id, "at": r.created_at}
        for r in releases
    ]
    envs = {e.id: e.name for e in project.environments}
    extras = {name: EnvExtras() for name in envs.values()}
    recent = session.scalars(
        select(m.Deployment).where(m.Deployment.project_id == project.id).order_by(m.Deployment.id.desc()).limit(200)
    )
    for dep in recent:
        extra = extras.get(envs.get(dep.environment_id, ""))
        if extra is None:
            continue
        if dep.status == "success" and not extra.release:
            extra.release = dep.release
        if dep.status in deploy_store.ACTIVE and extra.active_id is None:
            extra.active_id, extra.active_status, extra.active_release = dep.id, dep.status, dep.release
    versions = {x.release for x in extras.values() if x.release}
    commits = dict(
        session.execute(
            select(m.Release.version, m.Release.commit_sha).where(
                m.Release.project_id == project.id, m.Release.version.in_(sorted(versions))
            )
        ).all()
    )
    active_ids = {x.active_id: name for name, x in extras.items() if x.active_id is not None}
    if active_ids:
        for approval in session.scalars(
            select(m.Approval)
            .where(m.Approval.deployment_id.in_(sorted(active_ids)), m.Approval.status == "requested")
            .order_by(m.Approval.id)
        ):
            extras[active_ids[approval.deployment_id]].approval = ApprovalView(
                approval.id, approval.deployment_id, approval.mode, approval.status, approval.expires_at
            )
    for extra in extras.values():
        extra.commit = commits.get(extra.release, "")
    return BoardExtras(release_dicts, extras)


@dataclass
class RunData:
    access: ProjectAccess
    run: dict[str, Any]
    release: str | None


def run_page(session: Session, user: m.User, name: str, run_id: int) -> RunData | None:
    access = project_access(session, user, name)
    if access is None:
        return None
    run = session.get(m.PipelineRun, run_id)
    if run is None or run.project_id != access.project.id:
        return None
    release = session.scalar(select(m.Release.version).where(m.Release.run_id == run.id).limit(1))
    data = run_store.run_to_dict(run, name) | {
        "id": run.id,
        "created": run.created_at,
        "started": run.started_at,
        "finished": run.finished_at,
    }
    return RunData(access, data, release)


@dataclass
class DeploymentData:
    access: ProjectAccess
    deployment: dict[str, Any]
    permission: str
    created: Any
    finished: Any
    commit: str = ""


def deployment_dict(session: Session, dep: m.Deployment, project: str) -> dict[str, Any]:
    """The deployment as the API shapes it, plus what the rollout state holds for the page (steps, signals)."""
    env = session.get(m.Environment, dep.environment_id)
    approval = deploy_store.approval_of(session, dep)
    data = deploy_store.deployment_to_dict(dep, project, env.name if env else "?", approval)
    rollout = (dep.state or {}).get("rollout") or {}
    if data.get("weights") is None and isinstance(rollout.get("canary_weight"), int):
        weight = rollout["canary_weight"]
        data["weights"] = {"stable": 100 - weight, "canary": weight}
    if not data.get("verdicts"):
        # Verdicts are kept beside the rollout state or inside it, depending on the controller's version.
        kept = rollout.get("verdicts") or (dep.state or {}).get("verdicts")
        data["verdicts"] = list(kept)[-20:] if isinstance(kept, list) else []
    if isinstance(rollout.get("steps"), list):
        data["steps"] = rollout["steps"]
    signals = (dep.state or {}).get("signals")
    if isinstance(signals, dict):
        data["signals"] = signals
    return data


def deployment_page(session: Session, user: m.User, name: str, deployment_id: int) -> DeploymentData | None:
    access = project_access(session, user, name)
    if access is None:
        return None
    dep = session.get(m.Deployment, deployment_id)
    if dep is None or dep.project_id != access.project.id:
        return None
    env = session.get(m.Environment, dep.environment_id)
    permission = env_access(session, user, access, env) if env is not None else "none"
    commit = session.scalar(
        select(m.Release.commit_sha).where(m.Release.project_id == access.project.id, m.Release.version == dep.release)
    )
    return DeploymentData(
        access, deployment_dict(session, dep, name), permission, dep.created_at, dep.finished_at, commit or ""
    )


def deployment_for_viewer(session: Session, user: m.User, deployment_id: int) -> dict[str, Any] | None:
    """The deployment JSON for the live page, if the viewer may read its project."""
    dep = session.get(m.Deployment, deployment_id)
    if dep is None:
        return None
    project = session.get(m.Project, dep.project_id)
    if project is None or project_access(session, user, project.name) is None:
        return None
    return deployment_dict(session, dep, project.name)
