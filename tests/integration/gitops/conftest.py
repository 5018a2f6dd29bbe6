"""Real git repositories in tmp dirs for the GitOps and source-repository tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.gitops.gitrepo_helpers import commit_file, git


@pytest.fixture
def source_repo(tmp_path: Path) -> Path:
    """A working repository with a juanie.yaml, three commits on main and a feature branch."""
    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q", "--initial-branch=main")
    git(repo, "config", "commit.gpgsign", "false")
    commit_file(repo, "juanie.yaml", "name: shop\nversion: 1\n", "add juanie.yaml")
    commit_file(repo, "app.py", "print('v1')\n", "add app")
    commit_file(repo, "juanie.yaml", "name: shop\nversion: 2\n", "bump to v2\n\nlonger body")
    git(repo, "checkout", "-q", "-b", "feature/x")
    commit_file(repo, "feature.txt", "x\n", "feature work")
    git(repo, "checkout", "-q", "main")
    return repo
