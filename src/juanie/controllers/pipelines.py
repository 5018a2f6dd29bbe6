"""The pipeline controller: queued runs are executed on this host, their steps mirrored into the database, and a
green run becomes a Release.

Level-triggered like every controller: it looks at runs that are queued or running. A queued run without a task
gets one; a running run without a task in this process was orphaned by a server that died — its processes are
ended (`Executor.recover`) and the run is marked failed, so nothing stays "running" forever.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from juanie.controllers.namespaces import as_spec_error, load_assignment, namespace_findings
from juanie.controllers.runner import Controller, Requeue
from juanie.gitops import SourceRepo
from juanie.gitops.locations import RepoLocations
from juanie.pipeline import Executor, LogStore, StepChange
from juanie.pipeline.from_spec import pipeline_for
from juanie.pipeline.logs import ImageGuard
from juanie.pipeline.package import METADATA
from juanie.sandbox import Sandbox
from juanie.spec import SpecError, parse_spec
from juanie.spec.yamlpos import locate
from juanie.store import pipelines as run_store
from juanie.store import projects as project_store
from juanie.store import secrets as secret_store
from juanie.store.crypto import SecretBox
from juanie.store.db import Database
from juanie.store.models import PipelineRun, Project, Release

log = logging.getLogger("juanie.pipelines")
NAME = "pipelines"
REPO_CREDENTIALS = "juanie.repo-credentials"

OnRelease = Callable[[str, int], Awaitable[None]]  # (project, release id)


@dataclass
class PipelineContext:
    """Where pipelines keep their things on this host."""

    data_dir: Path
    max_parallel: int = 2
    max_per_project: int = 1
    sandbox: Sandbox | None = None
    """Where untrusted steps run; by default one from the environment that hides this data directory."""
    local_repo_roots: tuple[Path, ...] = ()
    """Where a project's repository may be a local path (`JUANIE_LOCAL_REPO_ROOTS`; see gitops.locations)."""

    @property
    def locations(self) -> RepoLocations:
        return RepoLocations(self.data_dir, self.local_repo_roots)

    @property
    def releases_dir(self) -> Path:
        return self.data_dir / "releases"

    @property
    def sources_dir(self) -> Path:
        return self.data_dir / "sources"


@dataclass
class _Active:
    task: asyncio.Task[None]
    cancel: asyncio.Event


def source_repo(ctx: PipelineContext, db: Database, box: SecretBox, project_name: str) -> SourceRepo:
    with db.session() as s:
        project = project_store.get_project(s, project_name)
        credentials = secret_store.resolve(s, box, project, None, include_reserved=True).get(REPO_CREDENTIALS)
        url = project.repo_url
    if not url:
        raise ValueError(f"project {project_name!r} has no source repository; set one with --repo")
    # Judged again at every use, whoever stored it: git gets the real path of a local repository, or nothing.
    return SourceRepo(ctx.locations.check(url), ctx.sources_dir, credentials=credentials)


class PipelineService:
    def __init__(self, db: Database, box: SecretBox, ctx: PipelineContext, actor: str,
                 on_release: OnRelease | None = None):
        self.db, self.box, self.ctx, self.actor = db, box, ctx, actor
        self.on_release = on_release
        self.executor = Executor(ctx.data_dir / "workspaces", ctx.data_dir / "cache", ctx.data_dir / "artifacts",
                                 max_parallel=ctx.max_parallel, max_per_project=ctx.max_per_project,
                                 sandbox=ctx.sandbox or Sandbox.from_env(hidden=(ctx.data_dir,)),
                                 releases_root=ctx.releases_dir)
        self.logs = LogStore(ctx.data_dir / "logs" / "runs")
        self.active: dict[int, _Active] = {}
        self._recovered = False

    def controller(self) -> Controller:
        return Controller(name=NAME, reconcile=self.reconcile, list_keys=self.list_keys, resync_seconds=5.0)

    async def list_keys(self) -> Iterable[Hashable]:
        def load() -> list[int]:
            with self.db.session() as s:
                return list(s.scalars(select(PipelineRun.id).where(PipelineRun.status.in_(run_store.ACTIVE))))

        return await asyncio.to_thread(load)

    async def reconcile(self, key: Hashable) -> Requeue | None:
        run_id = int(key)  # type: ignore[call-overload]
        if not self._recovered:
            recovered = await asyncio.to_thread(self.executor.recover)
            for item in recovered:
                log.warning("ended %d leftover processes of run %s", item.killed, item.run_id)
            self._recovered = True
        found = await asyncio.to_thread(self._load_status, run_id)
        if found is None:
            return None
        status, cancel_requested = found
        active = self.active.get(run_id)
        if active is not None:
            if cancel_requested and not active.cancel.is_set():
                active.cancel.set()
            return None
        if status == "queued" and cancel_requested:
            await asyncio.to_thread(self._finish, run_id, "cancelled", "cancelled before it started")
        elif status == "queued":
            cancel = asyncio.Event()
            task = asyncio.create_task(self._execute(run_id, cancel), name=f"run-{run_id}")
            self.active[run_id] = _Active(task, cancel)
        elif status == "running":
            await asyncio.to_thread(self._finish, run_id, "failed",
                                    "interrupted: the server running it stopped; its processes were ended")
        return None

    def _load_status(self, run_id: int) -> tuple[str, bool] | None:
        with self.db.session() as s:
            run = s.get(PipelineRun, run_id)
            return (run.status, run.cancel_requested) if run else None

    def _project_of(self, s: Any, run: PipelineRun) -> Project:
        project = s.get(Project, run.project_id)
        assert project is not None
        return project

    def _finish(self, run_id: int, state: str, error: str = "") -> None:
        with self.db.session() as s:
            run = s.get(PipelineRun, run_id)
            if run is None or run.status in ("succeeded", "failed", "cancelled"):
                return
            project = self._project_of(s, run)
            if run.status == "queued" and state == "failed":
                run_store.transition_run(s, project, run, "running", actor=self.actor)
            run_store.transition_run(s, project, run, state, actor=self.actor, error=error)

    async def _execute(self, run_id: int, cancel: asyncio.Event) -> None:
        writer = None
        try:
            prepared = await asyncio.to_thread(self._prepare, run_id)
            project_name, sha, spec_text, repo, secrets, _ = prepared
            writer = self.logs.writer(str(run_id))
            try:
                spec = parse_spec(spec_text, "juanie.yaml")
                given = await asyncio.to_thread(load_assignment, self.db, project_name)
                if findings := namespace_findings(spec, given):
                    raise as_spec_error(findings, locate(spec_text))
            except SpecError as exc:
                writer.write("", "system", f"juanie.yaml at {sha[:12]} is not valid:")
                for problem in str(exc).splitlines():
                    writer.write("", "system", problem)
                writer.end_run("failed")
                await asyncio.to_thread(self._finish, run_id, "failed", f"invalid juanie.yaml: {exc}")
                return
            pipeline = pipeline_for(spec, project=project_name, sha=sha, releases_dir=self.ctx.releases_dir,
                                    python=sys.executable)
            await asyncio.to_thread(self._set_steps, run_id, [
                {"key": k, "stage": k.split("/", 1)[0], "step": k.split("/", 1)[1], "state": "queued"}
                for k in pipeline.step_keys])

            async def on_step(change: StepChange) -> None:
                await asyncio.to_thread(self._step_changed, run_id, change)

            async def on_run(_: str, state: str) -> None:
                if state == "running":
                    await asyncio.to_thread(self._to_running, run_id)

            guard = ImageGuard(writer)
            result = await self.executor.run(
                str(run_id), lambda dest: repo.checkout(sha, dest), pipeline, secrets=secrets, log_sink=guard,
                on_step_change=on_step, cancel_event=cancel, project=project_name, on_run_change=on_run)
            state, error, images = result.state, result.error, result.images
            if guard.refused:  # an image that carried a secret is never recorded, and no release goes out without it
                images = {service: image for service, image in images.items() if service not in guard.refused}
                if state == "succeeded":
                    state, error = "failed", guard.reason()
            release_id = await asyncio.to_thread(self._complete, run_id, state, error, images)
            if release_id is not None and self.on_release is not None:
                await self.on_release(project_name, release_id)
        except asyncio.CancelledError:
            await asyncio.to_thread(self._finish, run_id, "failed", "interrupted: the controller stopped")
            raise
        except Exception as exc:
            log.exception("run %s failed to execute", run_id)
            if writer is not None:
                writer.write("", "system", f"error: {exc}")
                writer.end_run("failed")
            await asyncio.to_thread(self._finish, run_id, "failed", str(exc))
        finally:
            if writer is not None:
                writer.close()
            self.active.pop(run_id, None)

    def _prepare(self, run_id: int) -> tuple[str, str, str, SourceRepo, dict[str, str], int]:
        with self.db.session() as s:
            run = s.get(PipelineRun, run_id)
            assert run is not None
            project = self._project_of(s, run)
            name, sha, number = project.name, run.commit_sha, run.number
            secrets = secret_store.resolve(s, self.box, project, None)
            if run.target_env:
                env = project_store.get_environment(s, project, run.target_env)
                secrets = secret_store.resolve(s, self.box, project, env)
        repo = source_repo(self.ctx, self.db, self.box, name)
        repo.fetch()
        full_sha = repo.resolve(sha)
        text = repo.read_file(full_sha, "juanie.yaml")
        if text is None:
            raise ValueError(f"no juanie.yaml at {full_sha[:12]}; add one at the repository root")
        if full_sha != sha:
            with self.db.session() as s:
                run = s.get(PipelineRun, run_id)
                assert run is not None
                run.commit_sha = full_sha
        return name, full_sha, text, repo, secrets, number

    def _set_steps(self, run_id: int, steps: list[dict[str, Any]]) -> None:
        with self.db.session() as s:
            run = s.get(PipelineRun, run_id)
            if run is not None:
                run.steps = steps

    def _to_running(self, run_id: int) -> None:
        with self.db.session() as s:
            run = s.get(PipelineRun, run_id)
            if run is not None and run.status == "queued":
                run_store.transition_run(s, self._project_of(s, run), run, "running", actor=self.actor)

    def _step_changed(self, run_id: int, change: StepChange) -> None:
        with self.db.session() as s:
            run = s.get(PipelineRun, run_id)
            if run is None:
                return
            steps = [dict(step) for step in run.steps or []]
            for step in steps:
                if step["key"] == change.key:
                    step["state"] = change.state
                    if change.state == "running":
                        step["started"] = change.at
                    elif change.state in ("succeeded", "failed", "cancelled", "skipped"):
                        step["finished"] = change.at
                        step["exit_code"] = change.exit_code
                    if change.message:
                        step["message"] = change.message
            run.steps = steps

    def _complete(self, run_id: int, state: str, error: str, images: dict[str, str]) -> int | None:
        with self.db.session() as s:
            run = s.get(PipelineRun, run_id)
            if run is None:
                return None
            project = self._project_of(s, run)
            run.images = dict(images)
            if run.status == "queued":
                run_store.transition_run(s, project, run, "running", actor=self.actor)
            if state != "succeeded":
                failed = [st["key"] for st in run.steps or [] if st.get("state") == "failed"]
                reason = error or (f"step {', '.join(failed)} failed" if failed else state)
                run_store.transition_run(s, project, run, state, actor=self.actor, error=reason)
                return None
            artifacts = self._artifacts(project.name, run.commit_sha, images)
            run_store.transition_run(s, project, run, "succeeded", actor=self.actor)
            release = run_store.record_release(s, project, run, artifacts, actor=self.actor)
            return release.id

    def _artifacts(self, project: str, sha: str, images: dict[str, str]) -> dict[str, Any]:
        """One artifact per service: the local release directory, and an image a step built and pushed."""
        artifacts: dict[str, Any] = {}
        base = self.ctx.releases_dir / project
        for service_dir in sorted(p for p in base.glob("*") if not p.name.startswith("_")):
            release_dir = service_dir / sha[:12]
            meta_path = release_dir / METADATA
            if not meta_path.exists():
                continue
            meta = json.loads(meta_path.read_text())
            artifacts[service_dir.name] = {
                "image": f"juanie.local/{project}/{service_dir.name}:{sha[:12]}",
                "path": str(release_dir),
                "content_hash": meta.get("content_hash", ""),
            }
        for service, image in images.items():
            if image != artifacts.get(service, {}).get("image"):  # an image a step built and pushed itself
                artifacts.setdefault(service, {})["pushed_image"] = image
        return artifacts


def latest_release_for(db: Database, project: str) -> Release | None:
    with db.session() as s:
        found = project_store.get_project(s, project)
        return s.scalar(select(Release).where(Release.project_id == found.id).order_by(Release.id.desc()).limit(1))
