"""SourceRepo against a real local repository: fetch, resolve, read, commit info, checkout, new commits."""

from __future__ import annotations

from pathlib import Path

import pytest

from juanie.gitops.git import GitError, redact, run_git
from juanie.gitops.source import SourceError, SourceRepo, changed_branches
from tests.integration.gitops.gitrepo_helpers import commit_file, git


def test_fetch_returns_every_branch_head(source_repo: Path, tmp_path: Path) -> None:
    src = SourceRepo(source_repo, tmp_path / "cache")
    heads = src.fetch()
    assert heads == {
        "main": git(source_repo, "rev-parse", "main"),
        "feature/x": git(source_repo, "rev-parse", "feature/x"),
    }
    assert src.mirror.parent == tmp_path / "cache"
    assert (src.mirror / "HEAD").exists()


def test_read_file_at_each_commit_and_missing_file(source_repo: Path, tmp_path: Path) -> None:
    src = SourceRepo(source_repo, tmp_path / "cache")
    src.fetch()
    head = src.resolve("main")
    first = git(source_repo, "rev-list", "--max-parents=0", "main")
    assert src.read_file(head, "juanie.yaml") == "name: shop\nversion: 2\n"
    assert src.read_file(first, "juanie.yaml") == "name: shop\nversion: 1\n"
    assert src.read_file(first, "app.py") is None
    assert src.resolve(head[:8]) == head


def test_unknown_ref_is_a_clear_error(source_repo: Path, tmp_path: Path) -> None:
    src = SourceRepo(source_repo, tmp_path / "cache")
    src.fetch()
    with pytest.raises(SourceError, match=r"unknown ref 'nope'.*main"):
        src.resolve("nope")
    with pytest.raises(SourceError, match="invalid ref"):
        src.resolve("--upload-pack=evil")


def test_reading_before_fetch_says_what_to_do(source_repo: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="fetch"):
        SourceRepo(source_repo, tmp_path / "cache").resolve("main")


def test_commit_info_has_author_message_branch(source_repo: Path, tmp_path: Path) -> None:
    src = SourceRepo(source_repo, tmp_path / "cache")
    src.fetch()
    info = src.commit_info("main")
    assert info.author == "Dev One" and info.email == "dev@example.com"
    assert info.subject == "bump to v2"
    assert info.message == "bump to v2\n\nlonger body"
    assert info.branch == "main"
    assert info.timestamp > 1_600_000_000
    assert src.commit_info("feature/x").branch == "feature/x"


def test_checkout_writes_tree_without_git_dir(source_repo: Path, tmp_path: Path) -> None:
    src = SourceRepo(source_repo, tmp_path / "cache")
    src.fetch()
    dest = src.checkout("feature/x", tmp_path / "ws")
    assert sorted(p.name for p in dest.iterdir()) == ["app.py", "feature.txt", "juanie.yaml"]
    assert (dest / "app.py").read_text() == "print('v1')\n"
    with pytest.raises(SourceError, match="not empty"):
        src.checkout("main", dest)


def test_new_commits_reports_moved_and_new_branches(source_repo: Path, tmp_path: Path) -> None:
    src = SourceRepo(source_repo, tmp_path / "cache")
    known = src.fetch()
    assert src.new_commits(known) == []
    a = commit_file(source_repo, "app.py", "print('v2')\n", "v2 of app")
    b = commit_file(source_repo, "app.py", "print('v3')\n", "v3 of app")
    git(source_repo, "branch", "release/1.0")
    updates = {u.branch: u for u in src.new_commits(known)}
    assert set(updates) == {"main", "release/1.0"}
    assert updates["main"].before == known["main"] and updates["main"].after == b
    assert [c.sha for c in updates["main"].commits] == [b, a]
    assert updates["release/1.0"].before is None
    assert [c.subject for c in updates["release/1.0"].commits] == ["v3 of app"]


def test_changed_branches_is_pure() -> None:
    assert changed_branches({"main": "a", "old": "c"}, {"main": "b", "dev": "d", "old": "c"}) == {
        "dev": (None, "d"),
        "main": ("a", "b"),
    }


def test_fetch_of_missing_remote_fails_clearly(tmp_path: Path) -> None:
    src = SourceRepo(tmp_path / "does-not-exist", tmp_path / "cache")
    with pytest.raises(SourceError, match="cannot fetch"):
        src.fetch()


def test_credentials_never_appear_in_errors_or_config(tmp_path: Path) -> None:
    src = SourceRepo("https://alice:s3cr3t-token@127.0.0.1:9/org/app.git", tmp_path / "cache")
    with pytest.raises(SourceError) as err:
        src.fetch(timeout=30)
    assert "s3cr3t-token" not in str(err.value)
    config = (src.mirror / "config").read_text()
    assert "s3cr3t-token" not in config and "alice" not in config
    assert "s3cr3t-token" not in repr(src)


def test_redact_hides_userinfo() -> None:
    assert redact("fatal: https://u:tok@host/x.git not found") == "fatal: https://***@host/x.git not found"
    assert redact("ssh://git@host/x") == "ssh://***@host/x"


def test_git_error_carries_stderr(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not a git repository"):
        run_git(["rev-parse", "HEAD"], cwd=tmp_path)


async def test_poll_reports_new_commits_until_stopped(source_repo: Path, tmp_path: Path) -> None:
    import asyncio

    from juanie.gitops.source import poll

    src = SourceRepo(source_repo, tmp_path / "cache")
    known = src.fetch()
    stop = asyncio.Event()
    seen: list[str] = []

    async def on_updates(updates) -> None:
        seen.extend(c.subject for u in updates for c in u.commits)
        stop.set()

    task = asyncio.create_task(poll(src, known, on_updates, stop, interval=0.05))
    await asyncio.sleep(0)  # the first poll finds nothing new
    sha = await asyncio.to_thread(commit_file, source_repo, "app.py", "print('v9')\n", "v9 of app")
    await asyncio.wait_for(task, 30)
    assert seen == ["v9 of app"] and known["main"] == sha
