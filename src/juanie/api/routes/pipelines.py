"""Pipelines, releases, push webhooks and the GitOps history of a project."""

from __future__ import annotations

import asyncio
import json
import secrets as pysecrets
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from juanie.api.auth import ProjectAccess, bearer_scheme, principal, require
from juanie.api.errors import error_response
from juanie.api.schemas import ROW_ID_MAX, RowId, Strict
from juanie.api.sse import with_heartbeat
from juanie.api.state import AppState, app_state
from juanie.api.webhook_guard import Refusal, WebhookGuard
from juanie.controllers.pipelines import NAME as PIPELINES
from juanie.controllers.pipelines import source_repo
from juanie.controllers.sources import NewCommit, queue_commit
from juanie.domain.environments import environment_for_branch
from juanie.domain.errors import Conflict, Forbidden, Invalid, NotFound
from juanie.domain.rbac import role_allows
from juanie.gitops import WebhookError, parse_push
from juanie.gitops.webhooks import signature_problem, verify
from juanie.store import accounts
from juanie.store import pipelines as run_store
from juanie.store import projects as project_store
from juanie.store import secrets as secret_store
from juanie.store.events import record
from juanie.store.models import PipelineRun, Project, User, WebhookDelivery

WEBHOOK_SECRET = "juanie.webhook-secret"

router = APIRouter(tags=["pipelines"], dependencies=[Depends(bearer_scheme)])
hooks = APIRouter(tags=["hooks"])


class RunIn(Strict):
    ref: str = Field(default="", max_length=255, description="branch, tag or commit; default: the default branch")
    branch: str | None = Field(default=None, max_length=255, description="the branch the run counts for")


def _services(request: Request) -> Any:
    return request.app.state.juanie.pipelines


def _gitops(request: Request, project: str) -> Any:
    state = request.app.state.juanie
    with state.db.session() as s:
        url = project_store.get_project(s, project).gitops_url
    return state.gitops.repo(project, url)


def _run_access(request: Request, run_id: RowId, action: str) -> tuple[PipelineRun, str]:
    who = principal(request)
    db = request.app.state.juanie.db
    with db.session() as s:
        run = s.get(PipelineRun, run_id)
        project = s.get(Project, run.project_id) if run else None
        role = None
        if project is not None:
            role = accounts.project_role(s, s.get(User, who.user_id), project)
        if run is None or project is None or (role is None and not who.is_admin):
            raise NotFound(f"run {run_id} not found", location="run_id")
        if not role_allows(role, action, is_admin=who.is_admin):
            raise Forbidden(f"{action} on project {project.name!r} is not allowed for your role")
        return run, project.name


def run_reader(request: Request, run_id: RowId) -> tuple[PipelineRun, str]:
    return _run_access(request, run_id, "project.read")


def run_canceller(request: Request, run_id: RowId) -> tuple[PipelineRun, str]:
    return _run_access(request, run_id, "pipelines.cancel")


def _run_dict(run: PipelineRun, project: str) -> dict[str, Any]:
    return run_store.run_to_dict(run, project) | {"id": run.id}


@router.get("/api/projects/{project}/runs", summary="Pipeline runs of a project, newest first")
def list_runs(project: str, status: str | None = Query(None, max_length=16), limit: int = Query(50, ge=1, le=500),
              access: ProjectAccess = require("project.read"),
              state: AppState = Depends(app_state)) -> dict[str, Any]:
    with state.db.session() as s:
        found = project_store.get_project(s, project)
        return {"items": [_run_dict(r, project) for r in run_store.list_runs(s, found, status=status, limit=limit)]}


@router.post("/api/projects/{project}/runs", status_code=201, summary="Run the pipeline at a ref")
async def create_run(project: str, request: Request, body: RunIn | None = None,
                     access: ProjectAccess = require("pipelines.run"),
                     state: AppState = Depends(app_state)) -> dict[str, Any]:
    body = body or RunIn()
    services = _services(request)

    def resolve() -> NewCommit:
        with state.db.session() as s:
            found = project_store.get_project(s, project)
            default_branch = found.default_branch
            if found.status not in ("active", "initializing"):
                raise Conflict(f"project {project!r} is {found.status}; pipelines do not run")
        try:
            repo = source_repo(services.ctx, state.db, state.box, project)
        except ValueError as exc:
            raise Invalid(str(exc), location="repo_url") from None
        heads = repo.fetch()
        ref = body.ref or default_branch
        try:
            sha = repo.resolve(ref)
        except Exception:
            raise Invalid(f"ref {ref!r} does not exist in the source repository", location="ref") from None
        branch = body.branch or (ref if ref in heads else default_branch)
        info = repo.commit_info(sha)
        return NewCommit(branch, sha, info.message, f"{info.author} <{info.email}>")

    commit = await asyncio.to_thread(resolve)

    def queue() -> PipelineRun:
        with state.db.session() as s:
            found = project_store.get_project(s, project)
            rules = [(e.name, list(e.branches or [])) for e in found.environments]
            run = run_store.queue_run(s, found, branch=commit.branch, commit_sha=commit.sha, trigger="manual",
                                      actor=access.who.username, commit_message=commit.message,
                                      author=commit.author, target_env=environment_for_branch(commit.branch, rules))
            return run

    run = await asyncio.to_thread(queue)
    state.runner.enqueue(PIPELINES, run.id)
    return _run_dict(run, project)


@router.get("/api/runs/{run_id}", summary="One pipeline run with its steps")
def get_run(run_id: RowId, found: tuple[PipelineRun, str] = Depends(run_reader)) -> dict[str, Any]:
    return _run_dict(*found)


@router.post("/api/runs/{run_id}/cancel", summary="Cancel a run: its whole process tree is stopped")
def cancel_run(run_id: RowId, request: Request, found: tuple[PipelineRun, str] = Depends(run_canceller),
               state: AppState = Depends(app_state)) -> dict[str, Any]:
    who = principal(request)
    with state.db.session() as s:
        run = s.get(PipelineRun, run_id)
        assert run is not None
        if run.status not in run_store.ACTIVE:
            raise Conflict(f"run {run_id} is {run.status}; nothing to cancel")
        run.cancel_requested = True
        record(s, actor=who.username, kind="pipeline.cancel_requested", subject=f"run/{found[1]}/{run.number}",
               project=found[1], data={"run": run.number})
        result = _run_dict(run, found[1])
    state.runner.enqueue(PIPELINES, run_id)
    return result


@router.get("/api/runs/{run_id}/logs", summary="A run's logs; `follow=1` streams them live (SSE)")
async def run_logs(run_id: RowId, request: Request, step: str | None = Query(None, max_length=255),
                   offset: int = Query(0, ge=0, le=ROW_ID_MAX), limit: int = Query(5000, ge=1, le=100000),
                   q: str | None = Query(None, max_length=200, description="search text"),
                   follow: bool = False, found: tuple[PipelineRun, str] = Depends(run_reader)) -> Any:
    logs = _services(request).logs
    key = str(run_id)
    if follow:
        async def lines() -> AsyncIterator[str]:
            async for line in logs.follow(key, step=step, timeout=3600):
                yield f"data: {json.dumps(_line(line))}\n\n"
            yield "event: end\ndata: {}\n\n"

        async def stream() -> AsyncIterator[bytes]:
            async for text in with_heartbeat(lines(), request.is_disconnected):
                yield text.encode()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    lines = logs.search(key, q, step=step) if q else logs.read(key, step=step, offset=offset, limit=limit)
    return {"items": [_line(x) for x in lines], "final": logs.is_final(key)}


def _line(line: Any) -> dict[str, Any]:
    return {"ts": line.ts, "step": line.step, "stream": line.stream, "text": line.text, "offset": line.offset}


@router.get("/api/projects/{project}/releases", tags=["releases"], summary="Releases, newest first")
def list_releases(project: str, limit: int = Query(50, ge=1, le=500), access: ProjectAccess = require("project.read"),
                  state: AppState = Depends(app_state)) -> dict[str, Any]:
    with state.db.session() as s:
        found = project_store.get_project(s, project)
        releases = run_store.list_releases(s, found, limit)
        numbers = dict(s.execute(select(PipelineRun.id, PipelineRun.number).where(
            PipelineRun.id.in_([r.run_id for r in releases if r.run_id]))).all())
        return {"items": [run_store.release_to_dict(r, project, numbers.get(r.run_id)) for r in releases]}


@router.get("/api/projects/{project}/releases/{version}", tags=["releases"], summary="One release")
def get_release(project: str, version: str, access: ProjectAccess = require("project.read"),
                state: AppState = Depends(app_state)) -> dict[str, Any]:
    with state.db.session() as s:
        release = run_store.get_release(s, project_store.get_project(s, project), version)
        run = s.get(PipelineRun, release.run_id) if release.run_id else None
        return run_store.release_to_dict(release, project, run.number if run else None)


@router.post("/api/projects/{project}/webhook", tags=["hooks"],
             summary="Create or rotate the push webhook's secret (shown only in this response)")
def rotate_webhook(project: str, request: Request, access: ProjectAccess = require("secrets.write"),
                   state: AppState = Depends(app_state)) -> dict[str, Any]:
    value = pysecrets.token_urlsafe(32)
    with state.db.session() as s:
        found = project_store.get_project(s, project)
        secret_store.set_secret(s, state.box, found, None, WEBHOOK_SECRET, value, actor=access.who.username)
    url = str(request.base_url).rstrip("/") + f"/api/hooks/git?project={project}"
    return {"url": url, "secret": value, "content_type": "application/json",
            "headers": {"github": "X-Hub-Signature-256", "gitlab": "X-Gitlab-Token"}}


def _guard(request: Request) -> WebhookGuard:
    return request.app.state.webhook_guard


@hooks.post("/api/hooks/git", summary="Push webhook (GitHub or GitLab); authenticated by its signature")
async def git_webhook(request: Request, project: str | None = Query(None, max_length=64),
                      state: AppState = Depends(app_state), guard: WebhookGuard = Depends(_guard)) -> JSONResponse:
    """Verified with the project's webhook secret (`X-Hub-Signature-256` or `X-Gitlab-Token`); a missing, malformed
    or wrong signature or a replayed delivery id is refused with 401 and its reason. Refusals are rate-limited per
    project and client address (429), counted in `juanie_webhook_rejected_total{reason}` and summarised on the
    project's timeline at most once a minute (see `juanie.api.webhook_guard`)."""
    client = request.client.host if request.client else ""

    async def refused(refusal: Refusal) -> JSONResponse:
        return await asyncio.to_thread(guard.settle, refusal) if refusal.summary else refusal.response

    throttled = guard.admit(project, client)
    if throttled is not None:
        return await refused(throttled)
    headers = {k.lower(): v for k, v in request.headers.items()}
    problem = signature_problem(headers)
    if problem is not None:
        return await refused(guard.refuse(problem.code, str(problem), project, client))
    body = await request.body()  # at most Settings.max_webhook_body_bytes: api.body_limit refused longer ones
    try:
        push = parse_push(headers, body)
    except WebhookError as exc:
        if exc.code == "unsupported_event":
            guard.accepted(project, client)
            return JSONResponse({"status": "ignored", "reason": str(exc)}, status_code=202)
        return await refused(guard.refuse("invalid_payload", str(exc), project, client,
                                          response=error_response(400, "invalid_webhook", str(exc))))

    def handle() -> JSONResponse:
        with state.db.session() as s:
            stmt = select(Project).where(Project.status.in_(("active", "initializing")))
            stmt = stmt.where(Project.name == project) if project else stmt.where(Project.repo_url != "")
            candidates = list(s.scalars(stmt))
            if not project:
                urls = {_norm(u) for u in (push.repo_urls or (push.repo_url,))}
                candidates = [p for p in candidates if _norm(p.repo_url) in urls]
            matched = None
            for candidate in candidates:
                secret = secret_store.resolve(s, state.box, candidate, None, include_reserved=True).get(
                    WEBHOOK_SECRET)
                if secret and verify(headers, body, secret):
                    matched = candidate
                    break
            if matched is None:
                name = project or (candidates[0].name if candidates else None)
                return guard.settle(guard.refuse(
                    "bad_signature", "signature does not match any project's webhook secret", name, client))
            try:
                s.add(WebhookDelivery(project_id=matched.id, delivery_id=push.delivery_id[:128]))
                s.flush()
            except IntegrityError:
                s.rollback()
                return guard.settle(guard.refuse(
                    "replayed", f"replayed delivery {push.delivery_id[:128]}", matched.name, client))
            record(s, actor=f"webhook:{push.pusher or push.provider}", kind="webhook.push",
                   subject=f"project/{matched.name}", project=matched.name,
                   data={"provider": push.provider, "branch": push.branch, "after": push.after_sha[:12],
                         "delivery": push.delivery_id, "commits": len(push.commits)})
            name = matched.name
        guard.accepted(project, client)
        if push.branch is None or push.deleted:
            return JSONResponse({"status": "ignored", "reason": "tag push or branch deletion"}, status_code=202)
        head = push.commits[-1] if push.commits else None
        commit = NewCommit(push.branch, push.after_sha, getattr(head, "message", ""),
                           getattr(head, "author", "") or push.pusher)
        run_id = queue_commit(state.db, name, commit, trigger="push", actor=f"webhook:{push.pusher or 'unknown'}")
        with state.db.session() as s:
            found = project_store.get_project(s, name)
            run_store.set_head(s, found, push.branch, push.after_sha)
        if run_id is not None:
            state.runner.enqueue(PIPELINES, run_id)
        return JSONResponse({"status": "queued" if run_id else "duplicate", "project": name, "run_id": run_id},
                            status_code=202)

    return await asyncio.to_thread(handle)


def _norm(url: str) -> str:
    url = url.strip().rstrip("/").removesuffix(".git")
    if "://" in url:
        _, rest = url.split("://", 1)
        rest = rest.split("@", 1)[-1]
        return rest.lower()
    return url


@router.get("/api/projects/{project}/gitops/log", tags=["gitops"], summary="History of the GitOps repository")
async def gitops_log(project: str, request: Request, env: str | None = Query(None, max_length=64),
                     limit: int = Query(50, ge=1, le=500), access: ProjectAccess = require("project.read")) -> Any:
    repo = await asyncio.to_thread(_gitops, request, project)
    commits = await asyncio.to_thread(repo.log, env, limit)
    return {"items": [_commit_dict(c) for c in commits]}


@router.get("/api/projects/{project}/gitops/diff", tags=["gitops"], summary="Unified diff of two revisions")
async def gitops_diff(project: str, request: Request, a: str = Query(..., min_length=4, max_length=64),
                      b: str = Query(..., min_length=4, max_length=64), path: str | None = Query(None, max_length=512),
                      access: ProjectAccess = require("project.read")) -> Any:
    repo = await asyncio.to_thread(_gitops, request, project)
    try:
        diff = await asyncio.to_thread(repo.diff, a, b, path)
    except Exception as exc:
        raise Invalid(f"cannot diff {a}..{b}: {exc}", location="a") from None
    return {"a": a, "b": b, "path": path, "diff": diff}


def _commit_dict(commit: Any) -> dict[str, Any]:
    data = {k: getattr(commit, k) for k in ("sha", "subject", "author", "timestamp", "release", "environment",
                                            "actor", "reason", "deployment", "action") if hasattr(commit, k)}
    return data


def install(app: FastAPI) -> None:
    state: AppState = app.state.juanie
    app.state.webhook_guard = WebhookGuard(state.db, state.metrics, burst=state.settings.webhook_reject_burst,
                                           per_minute=state.settings.webhook_reject_per_minute)
    app.include_router(router)
    app.include_router(hooks)
