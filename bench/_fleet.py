"""A store that looks like a team's after some months, for the API benches: projects with history to page through.

Written through the store functions the server itself uses (one transaction), before the server starts, so every
row and event is one the server could have written: users and tokens, projects with dev/staging/prod, pipeline runs
that moved queued → running → succeeded (every other one a release), and finished deployments on each environment.
A developer owns half of the projects and sees only those: the API's visibility filtering does real work.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from juanie.api.bootstrap import ensure_admin
from juanie.settings import sqlite_url
from juanie.store import accounts
from juanie.store import deployments as dep_store
from juanie.store import pipelines as run_store
from juanie.store import projects as project_store
from juanie.store.db import Database

ACTOR = "bench"


@dataclass(frozen=True)
class Fleet:
    """What the load needs to know about the seeded store."""

    developer_token: str  # a developer's API token: owner of `own`, nothing else
    own: list[str]  # the projects the developer owns
    all: list[str]
    runs: int
    deployments: int


def _sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


def seed(data_dir: Path, projects: int = 100, runs_per_project: int = 10, deployments_per_env: int = 4) -> Fleet:
    """Fill a fresh data directory's database (also creating the admin and its token file, as a first start does)."""
    db = Database(sqlite_url(data_dir))
    data_dir.mkdir(parents=True, exist_ok=True)
    db.migrate()
    ensure_admin(db, data_dir / "admin-token")
    names: list[str] = []
    runs = deployments = 0
    with db.session() as s:
        developer = accounts.create_user(s, "dev", display_name="A developer", actor=ACTOR)
        other = accounts.create_user(s, "other", display_name="Another team", actor=ACTOR)
        _, token = accounts.issue_token(s, developer, "bench", actor=ACTOR)
        for i in range(projects):
            owner = developer if i % 2 == 0 else other
            project = project_store.create_project(s, name=f"team-{i:03d}", actor=owner, description=f"team {i}",
                                                   team=f"team-{i % 10}")
            s.flush()
            for env in project.environments:
                project_store.transition_environment(s, project, env, "active", actor=ACTOR, reason="seeded")
            project_store.transition_project(s, project, "active", actor=ACTOR, reason="seeded")
            versions = []
            for n in range(runs_per_project):
                run = run_store.queue_run(s, project, branch="main", commit_sha=_sha(project.name, n), trigger="push",
                                          actor=ACTOR, commit_message=f"change {n}", author="Dev")
                run_store.transition_run(s, project, run, "running", actor=ACTOR)
                run_store.transition_run(s, project, run, "succeeded", actor=ACTOR)
                runs += 1
                if n % 2 == 0:
                    versions.append(run_store.record_release(s, project, run, {}, actor=ACTOR).version)
            for env in project.environments:
                for version in versions[-deployments_per_env:]:
                    dep = dep_store.create_deployment(s, project, env, release=version, strategy="rolling",
                                                      actor=ACTOR, reason="seeded")
                    dep_store.transition(s, project, env, dep, "running", actor=ACTOR)
                    dep_store.transition(s, project, env, dep, "success", actor=ACTOR)
                    deployments += 1
            names.append(project.name)
    db.dispose()
    return Fleet(token, names[::2], names, runs, deployments)
