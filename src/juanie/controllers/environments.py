"""The environment controller: brings environments from creating/updating to active, and deleting to deleted.

What "converged" means grows with the engines: today it prepares the environment's data directory on this host and
records the observed generation; engines plug in through `provision`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from pathlib import Path

from sqlalchemy import select

from juanie.controllers.runner import Controller, Requeue
from juanie.store import projects as project_store
from juanie.store.db import Database
from juanie.store.models import Environment, Project

Provision = Callable[[str, str, str], Awaitable[None]]  # (project, env, namespace)

NAME = "environments"


def environment_controller(
    db: Database, data_dir: Path, actor: str, provision: Provision | None = None
) -> Controller:
    async def default_provision(project: str, env: str, namespace: str) -> None:
        await asyncio.to_thread((data_dir / "envs" / namespace).mkdir, parents=True, exist_ok=True)

    do_provision = provision or default_provision

    async def list_keys() -> Iterable[Hashable]:
        def load() -> list[tuple[str, str]]:
            with db.session() as s:
                rows = s.execute(
                    select(Project.name, Environment.name)
                    .join(Environment, Environment.project_id == Project.id)
                    .where(Environment.status.in_(("creating", "updating", "deleting")))
                )
                return [(p, e) for p, e in rows]

        return await asyncio.to_thread(load)

    async def reconcile(key: Hashable) -> Requeue | None:
        project_name, env_name = key  # type: ignore[misc]

        def observe() -> tuple[str, str] | None:
            with db.session() as s:
                project = s.scalar(select(Project).where(Project.name == project_name))
                if project is None:
                    return None
                env = project_store.get_environment(s, project, env_name)
                return env.status, env.namespace

        found = await asyncio.to_thread(observe)
        if found is None or found[0] not in ("creating", "updating", "deleting"):
            return None
        status, namespace = found
        failure = ""
        if status != "deleting":
            try:
                await do_provision(project_name, env_name, namespace)
            except Exception as exc:
                failure = f"provisioning failed: {exc}"

        def commit() -> None:
            with db.session() as s:
                project = project_store.get_project(s, project_name)
                env = project_store.get_environment(s, project, env_name)
                if env.status != status:
                    return  # someone else moved it meanwhile; the next resync looks again
                target = "deleted" if status == "deleting" else ("failed" if failure else "active")
                project_store.transition_environment(
                    s, project, env, target, actor=actor, reason=failure or "converged"
                )
                env.observed_generation = env.generation
                if (
                    project.status == "initializing"
                    and target == "active"
                    and all(e.status == "active" or e is env for e in project.environments)
                ):
                    project_store.transition_project(
                        s, project, "active", actor=actor, reason="all environments active"
                    )
                elif project.status == "initializing" and target == "failed":
                    project_store.transition_project(
                        s, project, "failed", actor=actor, reason=f"environment {env_name}: {failure}"
                    )

        await asyncio.to_thread(commit)
        return None

    return Controller(name=NAME, reconcile=reconcile, list_keys=list_keys, resync_seconds=5.0)
