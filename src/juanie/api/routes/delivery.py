"""Deployments: deploy, promote, roll back, approve or reject, pause, resume, abort, retry — and watch."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import Field
from sqlalchemy import select

from juanie.api.auth import ProjectAccess, bearer_scheme, principal, require
from juanie.api.schemas import RowId, Strict
from juanie.api.state import AppState, app_state
from juanie.controllers.delivery import NAME as DELIVERY
from juanie.controllers.namespaces import bind
from juanie.domain.approvals import override_refusal
from juanie.domain.errors import Conflict, Forbidden, Invalid, NotFound
from juanie.domain.rbac import EnvPermission, env_permission
from juanie.render import ReleaseRef, render_manifests
from juanie.store import accounts
from juanie.store import deployments as dep_store
from juanie.store import pipelines as run_store
from juanie.store import projects as project_store
from juanie.store.events import record
from juanie.store.models import Deployment, Environment, Project, Release, User

router = APIRouter(tags=["delivery"], dependencies=[Depends(bearer_scheme)])
Reason = Field(default="", max_length=2000)


class DeployIn(Strict):
    env: str = Field(min_length=1, max_length=40)
    release: str | None = Field(default=None, min_length=4, max_length=64, description="default: the newest")
    reason: str = Reason


class PromoteIn(Strict):
    from_: str = Field(alias="from", min_length=1, max_length=40)
    to: str = Field(min_length=1, max_length=40)
    reason: str = Reason


class RollbackIn(Strict):
    env: str = Field(min_length=1, max_length=40)
    to: str | None = Field(default=None, min_length=4, max_length=64, description="default: the previous release")
    reason: str = Reason


class ReasonIn(Strict):
    reason: str = Reason


class OverrideIn(Strict):
    reason: str = Field(min_length=1, max_length=2000, description="why the four-eyes rule is set aside (audited)")


def _env_permission(s: Any, who: Any, project: Project, env: Environment) -> EnvPermission:
    user = s.get(User, who.user_id)
    return env_permission(accounts.project_role(s, user, project), accounts.env_grants_for(s, user, env),
                          restricted=env.deploy_restricted, is_admin=who.is_admin)


def _need_deploy(s: Any, who: Any, project: Project, env: Environment) -> None:
    if _env_permission(s, who, project, env) < EnvPermission.deploy:
        raise Forbidden(f"deploying to {project.name}/{env.name} needs deploy permission on that environment")


_LOOK_UP = object()


def _dict(s: Any, dep: Deployment, approval: Any = _LOOK_UP) -> dict[str, Any]:
    project, env = s.get(Project, dep.project_id), s.get(Environment, dep.environment_id)
    if approval is _LOOK_UP:
        approval = dep_store.approval_of(s, dep)
    data = dep_store.deployment_to_dict(dep, project.name, env.name, approval)
    state = dep.state or {}
    data["signals"] = state.get("signals", {})
    data["pause_reason"] = state.get("pause_reason")
    data["services"] = state.get("services", [])
    return data


def _create(state: AppState, who: Any, project_name: str, env_name: str, version: str | None, reason: str,
            kind: str) -> dict[str, Any]:
    with state.db.session() as s:
        project = project_store.get_project(s, project_name)
        if project.status != "active":
            raise Conflict(f"project {project_name!r} is {project.status}; it cannot deploy")
        env = project_store.get_environment(s, project, env_name)
        _need_deploy(s, who, project, env)
        if version:
            release = run_store.get_release(s, project, version)
        else:
            release = s.scalar(select(Release).where(Release.project_id == project.id)
                               .order_by(Release.id.desc()).limit(1))
            if release is None:
                raise Invalid(f"project {project_name!r} has no release yet; run its pipeline first",
                              location="release")
        dep = dep_store.create_deployment(s, project, env, release=release.version, strategy=env.strategy,
                                          actor=who.username, reason=reason, kind=kind)
        result = _dict(s, dep)
    state.runner.enqueue(DELIVERY, result["id"])
    return result


@router.post("/api/projects/{project}/deploy", status_code=201, summary="Deploy a release to an environment")
async def deploy(project: str, body: DeployIn, access: ProjectAccess = require("deployments.create"),
                 state: AppState = Depends(app_state)) -> dict[str, Any]:
    return await asyncio.to_thread(_create, state, access.who, project, body.env, body.release, body.reason,
                                   "deploy")


def _running_release(s: Any, project: Project, env_name: str) -> str:
    env = project_store.get_environment(s, project, env_name)
    release = dep_store.current_release(s, env)
    if not release:
        raise Conflict(f"{project.name}/{env_name} runs no release yet; nothing to promote", location="from")
    return release


@router.get("/api/projects/{project}/promote/preview", summary="What a promotion would change (manifest diff)")
async def promote_preview(project: str, request: Request, from_: str = Query(..., alias="from", max_length=40),
                          to: str = Query(..., max_length=40), access: ProjectAccess = require("project.read"),
                          state: AppState = Depends(app_state)) -> dict[str, Any]:
    def compute() -> dict[str, Any]:
        import difflib

        import yaml

        with state.db.session() as s:
            found = project_store.get_project(s, project)
            version = _running_release(s, found, from_)
            target = project_store.get_environment(s, found, to)
            namespace = target.namespace
            current = dep_store.current_release(s, target)
            releases = {r.version: r for r in s.scalars(select(Release).where(
                Release.project_id == found.id, Release.version.in_([version, current])))}
            s.expunge_all()

        def text(version: str) -> list[str]:
            if not version or version not in releases:
                return []
            release = releases[version]
            spec = bind(state.specs.at_commit(project, release.commit_sha), to, project, namespace)
            images = {k: v.get("image", "") for k, v in (release.artifacts or {}).items()}
            docs = render_manifests(spec, to, ReleaseRef(version, images))
            return yaml.safe_dump_all(docs, sort_keys=True).splitlines(keepends=True)

        diff = "".join(difflib.unified_diff(text(current), text(version), f"{to}@{current or 'nothing'}",
                                            f"{to}@{version}"))
        return {"release": version, "current": current, "diff": diff}

    return await asyncio.to_thread(compute)


@router.post("/api/projects/{project}/promote", status_code=201,
             summary="Deploy the exact release one environment runs to another (never a rebuild)")
async def promote(project: str, body: PromoteIn, access: ProjectAccess = require("deployments.create"),
                  state: AppState = Depends(app_state)) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with state.db.session() as s:
            version = _running_release(s, project_store.get_project(s, project), body.from_)
        return _create(state, access.who, project, body.to, version,
                       body.reason or f"promote {version} from {body.from_}", "promote")

    return await asyncio.to_thread(run)


@router.post("/api/projects/{project}/rollback", status_code=201,
             summary="Go back to an earlier release (default: the one before the current)")
async def rollback(project: str, body: RollbackIn, access: ProjectAccess = require("deployments.create"),
                   state: AppState = Depends(app_state)) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with state.db.session() as s:
            found = project_store.get_project(s, project)
            env = project_store.get_environment(s, found, body.env)
            current = dep_store.current_release(s, env)
            version = body.to
            if version is None:
                earlier = s.scalars(select(Deployment.release).where(
                    Deployment.environment_id == env.id, Deployment.status == "success",
                    Deployment.release != current).order_by(Deployment.id.desc()).limit(1)).first()
                if not earlier:
                    raise Conflict(f"{project}/{body.env} has no earlier successful release to go back to")
                version = earlier
        return _create(state, access.who, project, body.env, version, body.reason or f"rollback to {version}",
                       "rollback")

    return await asyncio.to_thread(run)


@router.get("/api/projects/{project}/deployments", summary="Deployments of a project, newest first")
def list_deployments(project: str, env: str | None = Query(None, max_length=40),
                     status: str | None = Query(None, max_length=16), limit: int = Query(50, ge=1, le=500),
                     access: ProjectAccess = require("project.read"),
                     state: AppState = Depends(app_state)) -> dict[str, Any]:
    with state.db.session() as s:
        found = project_store.get_project(s, project)
        environment = project_store.get_environment(s, found, env) if env else None
        deployments = dep_store.list_deployments(s, found, environment, limit, status)
        approvals = dep_store.approvals_of(s, deployments)
        return {"items": [_dict(s, d, approvals.get(d.id)) for d in deployments]}


def _load(request: Request, deployment_id: RowId, need: EnvPermission) -> tuple[Any, Any]:
    who = principal(request)
    state: AppState = request.app.state.juanie
    with state.db.session() as s:
        dep = s.get(Deployment, deployment_id)
        project = s.get(Project, dep.project_id) if dep else None
        env = s.get(Environment, dep.environment_id) if dep else None
        if dep is None or project is None or env is None:
            raise NotFound(f"deployment {deployment_id} not found", location="deployment_id")
        perm = _env_permission(s, who, project, env)
        if perm == EnvPermission.none:
            raise NotFound(f"deployment {deployment_id} not found", location="deployment_id")
        if perm < need:
            raise Forbidden(f"this needs {need.name} permission on {project.name}/{env.name}")
    return who, state


def reader(request: Request, deployment_id: RowId) -> tuple[Any, Any]:
    return _load(request, deployment_id, EnvPermission.read)


def deployer(request: Request, deployment_id: RowId) -> tuple[Any, Any]:
    return _load(request, deployment_id, EnvPermission.deploy)


@router.get("/api/deployments/{deployment_id}", summary="One deployment: rollout phase, weights, verdicts, signals")
def get_deployment(deployment_id: RowId, found: tuple[Any, Any] = Depends(reader)) -> dict[str, Any]:
    _, state = found
    with state.db.session() as s:
        return _dict(s, dep_store.get_deployment(s, deployment_id))


def _gated(s: Any, deployment_id: RowId) -> tuple[Any, Any, Project, Environment]:
    """The deployment, its approval, project and environment; 409 when it has no gate to decide."""
    dep = dep_store.get_deployment(s, deployment_id)
    approval = dep_store.approval_of(s, dep)
    if approval is None:
        raise Conflict(f"deployment {deployment_id} needs no approval")
    return dep, approval, s.get(Project, dep.project_id), s.get(Environment, dep.environment_id)


def _decide(found: tuple[Any, Any], deployment_id: RowId, target: str, reason: str) -> dict[str, Any]:
    who, state = found
    with state.db.session() as s:
        dep, approval, project, env = _gated(s, deployment_id)
        if target == "rejected" and not reason:
            raise Invalid("a rejection needs a reason", location="reason")
        dep_store.decide(s, project, env, approval, target, actor=who.username, reason=reason)
        result = _dict(s, dep)
    state.runner.enqueue(DELIVERY, deployment_id)
    return result


@router.post("/api/deployments/{deployment_id}/approve", summary="Approve a deployment waiting at its gate")
def approve(deployment_id: RowId, body: ReasonIn | None = None,
            found: tuple[Any, Any] = Depends(deployer)) -> dict[str, Any]:
    return _decide(found, deployment_id, "approved", (body or ReasonIn()).reason)


@router.post("/api/deployments/{deployment_id}/override",
             summary="Owners: let a deployment through its required approval without a second person (audited)")
def override(deployment_id: RowId, body: OverrideIn, found: tuple[Any, Any] = Depends(deployer)) -> dict[str, Any]:
    who, state = found
    with state.db.session() as s:
        dep, approval, project, env = _gated(s, deployment_id)
        refusal = override_refusal(role=accounts.project_role(s, s.get(User, who.user_id), project),
                                   is_admin=who.is_admin)
        if refusal:
            raise Forbidden(refusal)
        if approval.mode != "required":
            raise Conflict(f"deployment {deployment_id}'s approval is {approval.mode}; approve it instead")
        if not body.reason.strip():
            raise Invalid("an override needs a reason (it is kept in the audit log and shown on the deployment)",
                          location="reason")
        dep_store.decide(s, project, env, approval, "overridden", actor=who.username, reason=body.reason.strip())
        result = _dict(s, dep)
    state.runner.enqueue(DELIVERY, deployment_id)
    return result


@router.post("/api/deployments/{deployment_id}/reject", summary="Reject a deployment waiting at its gate")
def reject(deployment_id: RowId, body: ReasonIn | None = None,
           found: tuple[Any, Any] = Depends(deployer)) -> dict[str, Any]:
    return _decide(found, deployment_id, "rejected", (body or ReasonIn()).reason)


def _command(found: tuple[Any, Any], deployment_id: RowId, action: str, reason: str) -> dict[str, Any]:
    who, state = found
    with state.db.session() as s:
        dep = dep_store.get_deployment(s, deployment_id)
        project, env = s.get(Project, dep.project_id), s.get(Environment, dep.environment_id)
        if action == "abort" and dep.status == "pending":
            dep_store.transition(s, project, env, dep, "cancelled", actor=who.username,
                                 message=reason or "aborted before it started")
            return _dict(s, dep)
        if dep.status != "running":
            raise Conflict(f"deployment {deployment_id} is {dep.status}; only a running rollout can {action}")
        commands = list((dep.state or {}).get("commands", []))
        commands.append({"action": action, "reason": reason, "actor": who.username, "at": time.time()})
        dep.state = {**(dep.state or {}), "commands": commands}
        dep.revision += 1
        record(s, actor=who.username, kind=f"deployment.{action}_requested", subject=f"deployment/{dep.id}",
               project=project.name, environment=env.name, data={"deployment": dep.id, "reason": reason})
        result = _dict(s, dep)
    state.runner.enqueue(DELIVERY, deployment_id)
    return result


@router.post("/api/deployments/{deployment_id}/pause", summary="Hold the rollout at its current weights")
def pause_rollout(deployment_id: RowId, body: ReasonIn | None = None,
                  found: tuple[Any, Any] = Depends(deployer)) -> dict[str, Any]:
    return _command(found, deployment_id, "pause", (body or ReasonIn()).reason)


@router.post("/api/deployments/{deployment_id}/resume", summary="Continue a paused rollout")
def resume_rollout(deployment_id: RowId, body: ReasonIn | None = None,
                   found: tuple[Any, Any] = Depends(deployer)) -> dict[str, Any]:
    return _command(found, deployment_id, "resume", (body or ReasonIn()).reason)


@router.post("/api/deployments/{deployment_id}/abort", summary="All traffic back to stable now, then roll back")
def abort_rollout(deployment_id: RowId, body: ReasonIn | None = None,
                  found: tuple[Any, Any] = Depends(deployer)) -> dict[str, Any]:
    return _command(found, deployment_id, "abort", (body or ReasonIn(reason="aborted by user")).reason)


@router.post("/api/deployments/{deployment_id}/retry", status_code=201,
             summary="Deploy the same release again after a rollback or an abort")
def retry_rollout(deployment_id: RowId, body: ReasonIn | None = None,
                  found: tuple[Any, Any] = Depends(deployer)) -> dict[str, Any]:
    who, state = found
    with state.db.session() as s:
        dep = dep_store.get_deployment(s, deployment_id)
        if dep.status not in ("rolled_back", "cancelled", "failed"):
            raise Conflict(f"deployment {deployment_id} is {dep.status}; only an ended, unsuccessful one is retried")
        project, env = s.get(Project, dep.project_id), s.get(Environment, dep.environment_id)
        names = (project.name, env.name, dep.release)
    return _create(state, who, names[0], names[1], names[2], (body or ReasonIn()).reason or f"retry of {deployment_id}",
                   "deploy")


def install(app: FastAPI) -> None:
    app.include_router(router)
