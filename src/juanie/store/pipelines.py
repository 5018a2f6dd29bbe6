"""Pipeline runs and releases: queued, moved through their lifecycle, each change an event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from juanie.domain.errors import Conflict, NotFound
from juanie.domain.lifecycle import PIPELINE_RUN, IllegalTransition
from juanie.store.events import record
from juanie.store.models import PipelineRun, Project, Release, SourceHead

ACTIVE = ("queued", "running")


def queue_run(session: Session, project: Project, *, branch: str, commit_sha: str, trigger: str, actor: str,
              commit_message: str = "", author: str = "", target_env: str | None = None) -> PipelineRun:
    number = (session.scalar(select(func.max(PipelineRun.number)).where(PipelineRun.project_id == project.id))
              or 0) + 1
    run = PipelineRun(project_id=project.id, number=number, branch=branch, commit_sha=commit_sha,
                      commit_message=commit_message[:4000], author=author[:256], trigger=trigger, actor=actor,
                      target_env=target_env, status=PIPELINE_RUN.initial)
    session.add(run)
    session.flush()
    record(session, actor=actor, kind="pipeline.queued", subject=f"run/{project.name}/{number}",
           project=project.name, environment=target_env,
           data={"run": number, "branch": branch, "commit": commit_sha[:12], "trigger": trigger})
    return run


def find_run_for_commit(session: Session, project: Project, commit_sha: str, branch: str) -> PipelineRun | None:
    return session.scalar(select(PipelineRun).where(
        PipelineRun.project_id == project.id, PipelineRun.commit_sha == commit_sha, PipelineRun.branch == branch,
    ).order_by(PipelineRun.id.desc()).limit(1))


def get_run(session: Session, project: Project, number: int) -> PipelineRun:
    run = session.scalar(select(PipelineRun).where(PipelineRun.project_id == project.id,
                                                   PipelineRun.number == number))
    if run is None:
        raise NotFound(f"run {number} not found in project {project.name!r}", location="run")
    return run


def list_runs(session: Session, project: Project, *, status: str | None = None, limit: int = 50,
              before: int | None = None) -> list[PipelineRun]:
    stmt = select(PipelineRun).where(PipelineRun.project_id == project.id)
    if status:
        stmt = stmt.where(PipelineRun.status == status)
    if before:
        stmt = stmt.where(PipelineRun.number < before)
    return list(session.scalars(stmt.order_by(PipelineRun.number.desc()).limit(limit)))


def transition_run(session: Session, project: Project, run: PipelineRun, target: str, *, actor: str,
                   error: str = "") -> None:
    try:
        PIPELINE_RUN.check(run.status, target, f"{project.name}#{run.number}")
    except IllegalTransition as exc:
        raise Conflict(str(exc), location="status") from None
    previous, run.status = run.status, target
    now = datetime.now(UTC)
    if target == "running":
        run.started_at = now
    if PIPELINE_RUN.is_final(target):
        run.finished_at = now
    if error:
        run.error = error[:4000]
    data: dict[str, Any] = {"run": run.number, "from": previous, "to": target, "commit": run.commit_sha[:12]}
    if error:
        data["error"] = error[:500]
    record(session, actor=actor, kind=f"pipeline.{target}", subject=f"run/{project.name}/{run.number}",
           project=project.name, environment=run.target_env, data=data)


def run_to_dict(run: PipelineRun, project: str) -> dict[str, Any]:
    duration = None
    if run.started_at and run.finished_at:
        duration = round((run.finished_at - run.started_at).total_seconds(), 3)
    return {
        "project": project,
        "number": run.number,
        "status": run.status,
        "branch": run.branch,
        "commit": run.commit_sha,
        "commit_message": run.commit_message.split("\n", 1)[0],
        "author": run.author,
        "trigger": run.trigger,
        "actor": run.actor,
        "target_env": run.target_env,
        "error": run.error,
        "steps": run.steps or [],
        "images": run.images or {},
        "cancel_requested": run.cancel_requested,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_seconds": duration,
    }


def record_release(session: Session, project: Project, run: PipelineRun, artifacts: dict[str, Any], *,
                   actor: str) -> Release:
    existing = session.scalar(select(Release).where(Release.project_id == project.id,
                                                    Release.commit_sha == run.commit_sha))
    if existing is not None:
        return existing  # the same commit built twice is the same release
    release = Release(project_id=project.id, version=run.commit_sha[:12], commit_sha=run.commit_sha,
                      branch=run.branch, author=run.author, message=run.commit_message, run_id=run.id,
                      artifacts=artifacts)
    session.add(release)
    session.flush()
    record(session, actor=actor, kind="release.created", subject=f"release/{project.name}/{release.version}",
           project=project.name, environment=run.target_env,
           data={"release": release.version, "run": run.number, "branch": run.branch,
                 "services": sorted(artifacts), "target_env": run.target_env})
    return release


def get_release(session: Session, project: Project, version: str) -> Release:
    release = session.scalar(select(Release).where(Release.project_id == project.id,
                                                   Release.version.startswith(version[:12], autoescape=True))
                             .order_by(Release.id.desc()).limit(1))
    if release is None or not release.commit_sha.startswith(version):
        raise NotFound(f"release {version!r} not found in project {project.name!r}", location="release")
    return release


def list_releases(session: Session, project: Project, limit: int = 50) -> list[Release]:
    return list(session.scalars(select(Release).where(Release.project_id == project.id)
                                .order_by(Release.id.desc()).limit(limit)))


def release_to_dict(release: Release, project: str, run_number: int | None = None) -> dict[str, Any]:
    return {
        "project": project,
        "version": release.version,
        "commit": release.commit_sha,
        "branch": release.branch,
        "author": release.author,
        "message": release.message.split("\n", 1)[0],
        "run": run_number,
        "artifacts": release.artifacts,
        "created_at": release.created_at.isoformat() if release.created_at else None,
    }


def known_heads(session: Session, project: Project) -> dict[str, str]:
    return {h.branch: h.sha for h in session.scalars(select(SourceHead).where(SourceHead.project_id == project.id))}


def set_head(session: Session, project: Project, branch: str, sha: str | None) -> None:
    head = session.get(SourceHead, (project.id, branch))
    if sha is None:
        if head is not None:
            session.delete(head)
        return
    if head is None:
        session.add(SourceHead(project_id=project.id, branch=branch, sha=sha))
    else:
        head.sha = sha
