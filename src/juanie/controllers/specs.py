"""`juanie.yaml` as a release saw it: read from the source repository at the release's commit, parsed once.

A release is immutable, so its spec is too; the cache never needs invalidating.
"""

from __future__ import annotations

import threading

from sqlalchemy import select

from juanie.controllers.pipelines import PipelineContext, source_repo
from juanie.spec import ProjectSpec, parse_spec
from juanie.store.crypto import SecretBox
from juanie.store.db import Database
from juanie.store.models import Project, Release


class SpecCache:
    def __init__(self, db: Database, box: SecretBox, ctx: PipelineContext):
        self.db, self.box, self.ctx = db, box, ctx
        self._specs: dict[tuple[str, str], ProjectSpec] = {}
        self._lock = threading.Lock()

    def at_commit(self, project: str, sha: str) -> ProjectSpec:
        """The project's spec at `sha` (raises SpecError / ValueError with a clear message)."""
        key = (project, sha)
        with self._lock:
            if key in self._specs:
                return self._specs[key]
        repo = source_repo(self.ctx, self.db, self.box, project)
        text = repo.read_file(sha, "juanie.yaml")
        if text is None:
            repo.fetch()
            text = repo.read_file(sha, "juanie.yaml")
        if text is None:
            raise ValueError(f"no juanie.yaml at {sha[:12]} in {project}'s repository")
        spec = parse_spec(text, "juanie.yaml")
        with self._lock:
            self._specs[key] = spec
        return spec

    def latest(self, project: str) -> ProjectSpec | None:
        """The spec of the project's newest release, or None before the first release."""
        with self.db.session() as s:
            found = s.scalar(select(Release.commit_sha).join(Project, Project.id == Release.project_id)
                             .where(Project.name == project).order_by(Release.id.desc()).limit(1))
        return self.at_commit(project, found) if found else None
