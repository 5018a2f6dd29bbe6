"""Noticing new commits: pushes (webhooks) and polling both end here, as queued pipeline runs.

Every branch that moves gets a run (that is CI); the environment the branch maps to (branch rules) is recorded on
the run so that its release knows where it may go. The same commit on the same branch is never queued twice, so a
webhook and the poller seeing one push produce one run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from sqlalchemy import select

from juanie.controllers.pipelines import NAME as PIPELINES
from juanie.controllers.pipelines import PipelineContext, source_repo
from juanie.controllers.runner import Controller, Requeue
from juanie.domain.environments import environment_for_branch
from juanie.gitops import DEFAULT_POLL_INTERVAL
from juanie.store import pipelines as run_store
from juanie.store import projects as project_store
from juanie.store.crypto import SecretBox
from juanie.store.db import Database
from juanie.store.models import Project

log = logging.getLogger("juanie.sources")
NAME = "sources"


@dataclass(frozen=True)
class NewCommit:
    branch: str
    sha: str
    message: str = ""
    author: str = ""


def queue_commit(db: Database, project_name: str, commit: NewCommit, *, trigger: str, actor: str) -> int | None:
    """Queue a run for `commit` unless one exists; returns the new run's id (None when deduplicated)."""
    with db.session() as s:
        project = project_store.get_project(s, project_name)
        if project.status not in ("active", "initializing"):
            return None
        if run_store.find_run_for_commit(s, project, commit.sha, commit.branch) is not None:
            return None
        rules = [(e.name, list(e.branches or [])) for e in project.environments if e.status != "deleted"]
        run = run_store.queue_run(s, project, branch=commit.branch, commit_sha=commit.sha, trigger=trigger,
                                  actor=actor, commit_message=commit.message, author=commit.author,
                                  target_env=environment_for_branch(commit.branch, rules))
        return run.id


def poll_interval(project: Project) -> float:
    value = (project.settings or {}).get("poll_interval_seconds", DEFAULT_POLL_INTERVAL)
    try:
        return max(5.0, float(value))
    except (TypeError, ValueError):
        return DEFAULT_POLL_INTERVAL


def sources_controller(db: Database, box: SecretBox, ctx: PipelineContext, actor: str,
                       nudge: Callable[[str, Hashable], None]) -> Controller:
    """Polls each project's repository on its interval; the first look only records the branch heads."""

    async def list_keys() -> Iterable[Hashable]:
        def load() -> list[str]:
            with db.session() as s:
                return list(s.scalars(select(Project.name).where(
                    Project.repo_url != "", Project.status.in_(("active", "initializing")))))

        return await asyncio.to_thread(load)

    async def reconcile(key: Hashable) -> Requeue | None:
        name = str(key)

        def poll_once() -> tuple[list[int], float] | None:
            with db.session() as s:
                project = s.scalar(select(Project).where(Project.name == name))
                if project is None or not project.repo_url or project.status not in ("active", "initializing"):
                    return None
                interval = poll_interval(project)
                last = float((project.settings or {}).get("last_poll", 0))
                if time.time() - last < interval - 0.5:
                    return [], interval - (time.time() - last)
                known = run_store.known_heads(s, project)
            repo = source_repo(ctx, db, box, name)
            first_look = not known
            repo.fetch()
            updates = repo.new_commits(known)
            queued: list[int] = []
            for update in updates:
                if not first_look and update.commits:
                    head = update.commits[0]
                    run_id = queue_commit(db, name, NewCommit(update.branch, update.after, head.message,
                                                              head.author), trigger="poll", actor=actor)
                    if run_id is not None:
                        queued.append(run_id)
            with db.session() as s:
                project = project_store.get_project(s, name)
                for update in updates:
                    run_store.set_head(s, project, update.branch, update.after)
                project.settings = {**(project.settings or {}), "last_poll": time.time()}
            return queued, interval

        try:
            outcome = await asyncio.to_thread(poll_once)
        except Exception as exc:
            log.warning("polling %s failed: %s", name, exc)
            return Requeue(after=DEFAULT_POLL_INTERVAL)
        if outcome is None:
            return None
        queued, wait = outcome
        for run_id in queued:
            nudge(PIPELINES, run_id)
        return Requeue(after=max(1.0, wait))

    return Controller(name=NAME, reconcile=reconcile, list_keys=list_keys, resync_seconds=30.0)
