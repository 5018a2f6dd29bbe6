"""Deployments and their approvals: one release going to one environment, each change an event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from juanie.domain.approvals import approval_refusal
from juanie.domain.errors import Conflict, Forbidden, NotFound
from juanie.domain.lifecycle import APPROVAL, DEPLOYMENT, IllegalTransition
from juanie.store.events import record
from juanie.store.models import Approval, Deployment, Environment, Project

ACTIVE = ("pending", "running")
OPTIONAL_APPROVAL_WINDOW = timedelta(minutes=10)
REQUIRED_APPROVAL_WINDOW = timedelta(hours=24)


def active_deployment(session: Session, env: Environment) -> Deployment | None:
    return session.scalar(select(Deployment).where(Deployment.environment_id == env.id,
                                                   Deployment.status.in_(ACTIVE)).order_by(Deployment.id).limit(1))


def current_release(session: Session, env: Environment) -> str:
    """The release the environment runs: that of its last successful deployment."""
    found = session.scalar(select(Deployment.release).where(Deployment.environment_id == env.id,
                                                            Deployment.status == "success")
                           .order_by(Deployment.id.desc()).limit(1))
    return found or ""


def was_live(session: Session, env: Environment, release: str) -> bool:
    """Whether `release` ran in `env` before: a deployment of it there succeeded."""
    return session.scalar(select(Deployment.id).where(Deployment.environment_id == env.id,
                                                      Deployment.release == release,
                                                      Deployment.status == "success").limit(1)) is not None


def _check_rollback(session: Session, project: Project, env: Environment, release: str) -> None:
    """A rollback skips the approval and the environment's strategy because it goes back to known-good: so it may
    only go to a release that was live in this very environment. Anything else is a deploy."""
    where = f"{project.name}/{env.name}"
    if not was_live(session, env, release):
        raise Conflict(f"release {release} was never live in {where}; a rollback only goes back to a release "
                       f"this environment ran. Deploy it instead (`juanie deploy -p {project.name} -e {env.name} "
                       f"-r {release}`): that goes through the approval and the {env.strategy} strategy",
                       location="to")
    if current_release(session, env) == release:
        raise Conflict(f"{where} already runs {release}; there is nothing to roll back to", location="to")


def create_deployment(session: Session, project: Project, env: Environment, *, release: str, strategy: str,
                      actor: str, reason: str = "", kind: str = "deploy") -> Deployment:
    """A pending deployment, refused while another one of the same environment is still pending or running.

    A rollback (no approval, rolling at once) is refused unless its release was live in this environment."""
    busy = active_deployment(session, env)
    if busy is not None:
        raise Conflict(f"{project.name}/{env.name} already has deployment {busy.id} ({busy.status}); "
                       "wait for it, or cancel/abort it first", location="env")
    if kind == "rollback":
        _check_rollback(session, project, env, release)
    deployment = Deployment(project_id=project.id, environment_id=env.id, release=release, strategy=strategy,
                            status=DEPLOYMENT.initial, actor=actor, reason=reason, kind=kind,
                            previous_release=current_release(session, env), state={})
    session.add(deployment)
    session.flush()
    record(session, actor=actor, kind="deployment.created", subject=f"deployment/{deployment.id}",
           project=project.name, environment=env.name,
           data={"deployment": deployment.id, "release": release, "strategy": strategy, "kind": kind,
                 "previous_release": deployment.previous_release, "reason": reason})
    if env.approval in ("optional", "required") and kind != "rollback":
        window = REQUIRED_APPROVAL_WINDOW if env.approval == "required" else OPTIONAL_APPROVAL_WINDOW
        approval = Approval(deployment_id=deployment.id, environment_id=env.id, mode=env.approval,
                            requested_by=actor, expires_at=datetime.now(UTC) + window)
        session.add(approval)
        session.flush()
        record(session, actor=actor, kind="approval.requested", subject=f"deployment/{deployment.id}",
               project=project.name, environment=env.name,
               data={"deployment": deployment.id, "approval": approval.id, "mode": env.approval,
                     "release": release, "expires_at": approval.expires_at.isoformat()})
    return deployment


def get_deployment(session: Session, deployment_id: int) -> Deployment:
    found = session.get(Deployment, deployment_id)
    if found is None:
        raise NotFound(f"deployment {deployment_id} not found", location="deployment_id")
    return found


def transition(session: Session, project: Project, env: Environment, deployment: Deployment, target: str, *,
               actor: str, message: str = "", data: dict[str, Any] | None = None) -> None:
    try:
        DEPLOYMENT.check(deployment.status, target, str(deployment.id))
    except IllegalTransition as exc:
        raise Conflict(str(exc), location="status") from None
    previous, deployment.status = deployment.status, target
    deployment.status_message = message
    deployment.revision += 1
    if DEPLOYMENT.is_final(target) or target == "failed":
        deployment.finished_at = datetime.now(UTC)
    record(session, actor=actor, kind=f"deployment.{target}", subject=f"deployment/{deployment.id}",
           project=project.name, environment=env.name,
           data={"deployment": deployment.id, "release": deployment.release, "from": previous, "to": target,
                 "message": message, **(data or {})})


def approval_of(session: Session, deployment: Deployment) -> Approval | None:
    return session.scalar(select(Approval).where(Approval.deployment_id == deployment.id)
                          .order_by(Approval.id.desc()).limit(1))


def approvals_of(session: Session, deployments: list[Deployment]) -> dict[int, Approval]:
    """The latest approval of each deployment in one query (a page of deployments, not one query per row)."""
    latest: dict[int, Approval] = {}
    ids = [d.id for d in deployments]
    if ids:
        for approval in session.scalars(select(Approval).where(Approval.deployment_id.in_(ids)).order_by(Approval.id)):
            latest[approval.deployment_id] = approval
    return latest


def decide(session: Session, project: Project, env: Environment, approval: Approval, target: str, *, actor: str,
           reason: str) -> None:
    """Approve, reject or (an owner, checked by the caller) override. A required approval is never given by the
    person who requested the deployment (four eyes); an override is recorded as `approval.overridden`."""
    try:
        APPROVAL.check(approval.status, target, str(approval.id))
    except IllegalTransition as exc:
        raise Conflict(str(exc), location="status") from None
    if target == "approved":
        refusal = approval_refusal(mode=approval.mode, requested_by=approval.requested_by, actor=actor)
        if refusal:
            raise Forbidden(refusal, location="deployment_id")
    approval.status, approval.decided_by, approval.reason = target, actor, reason
    approval.decided_at = datetime.now(UTC)
    record(session, actor=actor, kind=f"approval.{target}", subject=f"deployment/{approval.deployment_id}",
           project=project.name, environment=env.name,
           data={"deployment": approval.deployment_id, "approval": approval.id, "reason": reason,
                 "mode": approval.mode})


def gate(approval: Approval | None, now: datetime) -> str:
    """What the approval says about proceeding: "go", "wait", "stop" (rejected or a required one expired).

    An optional approval proceeds unless rejected within its window; a required one waits for a decision.
    """
    if approval is None or approval.status in ("approved", "overridden"):
        return "go"
    if approval.status in ("rejected", "expired"):
        return "go" if approval.status == "expired" and approval.mode == "optional" else "stop"
    expired = approval.expires_at is not None and now >= approval.expires_at
    if approval.mode == "optional":
        return "go" if expired else "wait"
    return "stop" if expired else "wait"


def list_deployments(session: Session, project: Project, env: Environment | None = None, limit: int = 50,
                     status: str | None = None) -> list[Deployment]:
    stmt = select(Deployment).where(Deployment.project_id == project.id)
    if env is not None:
        stmt = stmt.where(Deployment.environment_id == env.id)
    if status:
        stmt = stmt.where(Deployment.status == status)
    return list(session.scalars(stmt.order_by(Deployment.id.desc()).limit(limit)))


def pending_approvals(session: Session, projects: list[Project] | None = None) -> list[Approval]:
    stmt = select(Approval).where(Approval.status == "requested")
    if projects is not None:
        env_ids = [e.id for p in projects for e in p.environments]
        stmt = stmt.where(Approval.environment_id.in_(env_ids))
    return list(session.scalars(stmt.order_by(Approval.id)))


def deployment_to_dict(dep: Deployment, project: str, env: str, approval: Approval | None = None) -> dict[str, Any]:
    state = dep.state or {}
    return {
        "id": dep.id,
        "project": project,
        "environment": env,
        "release": dep.release,
        "previous_release": dep.previous_release,
        "kind": dep.kind,
        "strategy": dep.strategy,
        "status": dep.status,
        "message": dep.status_message,
        "actor": dep.actor,
        "reason": dep.reason,
        "gitops_commit": dep.gitops_commit,
        "phase": state.get("rollout", {}).get("phase"),
        "weights": state.get("weights"),
        "step": state.get("rollout", {}).get("step_index"),
        "verdicts": state.get("rollout", {}).get("verdicts", [])[-20:],
        "approval": None if approval is None else {
            "id": approval.id, "mode": approval.mode, "status": approval.status, "decided_by": approval.decided_by,
            "requested_by": approval.requested_by, "reason": approval.reason,
            "overridden": approval.status == "overridden",
            "expires_at": approval.expires_at.isoformat() if approval.expires_at else None},
        "created_at": dep.created_at.isoformat() if dep.created_at else None,
        "finished_at": dep.finished_at.isoformat() if dep.finished_at else None,
    }
