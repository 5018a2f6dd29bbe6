"""Each project's GitOps repository: where every environment's desired state is committed, rendered.

By default a bare repository under the data directory (`gitops/<project>.git`); a project may name a remote instead
(`gitops_url`). A deploy writes the rendered devops tree of one environment with a structured message; a rollback
is a revert; history and diffs are git's.
"""

from __future__ import annotations

import threading
from pathlib import Path

from juanie.gitops import CommitMessage, GitOpsRepo
from juanie.gitops.locations import RepoLocations
from juanie.render import ReleaseRef, render_tree
from juanie.spec import ProjectSpec

_SHARED_PREFIXES = ("base/", "monitoring/", ".github/", "README")


class GitOpsRepos:
    def __init__(self, data_dir: Path, author: tuple[str, str] = ("Juanie", "juanie@localhost"),
                 local_repo_roots: tuple[Path, ...] = ()):
        self.root = data_dir / "gitops"
        self.locations = RepoLocations(data_dir, local_repo_roots)
        self.work_root = data_dir / "gitops-work"
        self.author = author
        self._repos: dict[str, GitOpsRepo] = {}
        self._lock = threading.Lock()

    def location(self, project: str, gitops_url: str = "") -> str:
        return gitops_url or str(self.root / f"{project}.git")

    def repo(self, project: str, gitops_url: str = "") -> GitOpsRepo:
        # A project's own gitops_url is judged at every use (the default, under the data directory, is ours).
        gitops_url = self.locations.check(gitops_url, field="gitops_url")
        with self._lock:
            repo = self._repos.get(project)
            if repo is None:
                self.root.mkdir(parents=True, exist_ok=True)
                repo = GitOpsRepo(self.location(project, gitops_url), self.work_root / project, author=self.author)
                repo.ensure()
                self._repos[project] = repo
            return repo

    def commit_environment(self, project: str, spec: ProjectSpec, env: str, release: ReleaseRef, message:
                           CommitMessage, gitops_url: str = "") -> str:
        """Render `env` at `release` and commit it (with the shared base); returns the new head (or the current
        one when nothing changed)."""
        tree = render_tree(spec, release, envs=[env])
        files = {path: content for path, content in tree.items()
                 if path.startswith((f"rendered/{env}/", f"overlays/{env}/", f"flux/{env}")) or
                 path.startswith(_SHARED_PREFIXES)}
        return self.repo(project, gitops_url).write_tree(env, files, message)
