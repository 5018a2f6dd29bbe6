"""GitOpsRepo against real bare repositories: write, log, diff, revert, concurrent writers, push retry."""

from __future__ import annotations

import multiprocessing
import stat
import threading
from pathlib import Path

import pytest

from juanie.gitops.message import CommitMessage
from juanie.gitops.repo import GitOpsError, GitOpsRepo
from tests.integration.gitops.gitrepo_helpers import git


def msg(release: str, env: str = "prod", reason: str = "pipeline 7 passed", deployment: str = "41") -> CommitMessage:
    return CommitMessage(
        project="shop",
        environment=env,
        release=release,
        actor="alice",
        reason=reason,
        deployment=deployment,
        strategy="canary",
    )


def release_files(env: str, version: str) -> dict[str, str]:
    return {
        f"rendered/{env}/deployment-user.yaml": f"kind: Deployment\nimage: user:{version}\n",
        f"rendered/{env}/service-user.yaml": "kind: Service\n",
        f"overlays/{env}/kustomization.yaml": f"resources: [../../base]\n# {version}\n",
        f"flux/{env}.yaml": "kind: Kustomization\n",
        "base/kustomization.yaml": "resources: []\n",
    }


@pytest.fixture
def repo(tmp_path: Path) -> GitOpsRepo:
    r = GitOpsRepo(tmp_path / "data" / "shop-gitops.git", tmp_path / "work" / "shop")
    r.ensure()
    return r


def test_ensure_creates_bare_repo_with_initial_commit(repo: GitOpsRepo, tmp_path: Path) -> None:
    bare = tmp_path / "data" / "shop-gitops.git"
    assert git(bare, "rev-parse", "--is-bare-repository") == "true"
    assert git(bare, "log", "--format=%s", "main") == "initialise GitOps repository"
    assert repo.ensure() == repo.head()  # idempotent
    assert len(repo.log()) == 1


def test_two_releases_give_a_readable_history(repo: GitOpsRepo) -> None:
    first = repo.write_tree("prod", release_files("prod", "1a2b3c4d5e"), msg("1a2b3c4d5e6f7a8b9c0d"))
    second = repo.write_tree("prod", release_files("prod", "9f8e7d6c5b"), msg("9f8e7d6c5b4a39281706", deployment="42"))
    history = repo.log("prod")
    assert [c.sha for c in history] == [second, first]
    top = history[0]
    assert top.subject == "deploy shop/prod: release 9f8e7d6 (canary)"
    assert (top.release, top.environment, top.actor, top.reason, top.deployment) == (
        "9f8e7d6c5b4a39281706",
        "prod",
        "alice",
        "pipeline 7 passed",
        "42",
    )
    assert top.author == "Juanie" and top.email == "juanie@localhost"
    assert top.parents == (first,)
    plain = git(Path(repo.url), "log", "--format=%s", "main").splitlines()
    assert plain[:2] == [
        "deploy shop/prod: release 9f8e7d6 (canary)",
        "deploy shop/prod: release 1a2b3c4 (canary)",
    ]


def test_write_replaces_owned_paths_and_keeps_other_envs(repo: GitOpsRepo) -> None:
    repo.write_tree("dev", release_files("dev", "v1"), msg("v1", env="dev"))
    repo.write_tree("prod", release_files("prod", "v1"), msg("v1"))
    files = {k: v for k, v in release_files("prod", "v2").items() if "service-user" not in k}
    head = repo.write_tree("prod", files, msg("v2"))
    tree = repo.tree(head)
    assert "rendered/prod/service-user.yaml" not in tree  # removed: the renderer owns rendered/prod/
    assert "rendered/dev/service-user.yaml" in tree  # another environment is untouched
    assert tree["rendered/prod/deployment-user.yaml"] == b"kind: Deployment\nimage: user:v2\n"
    assert "README.md" in tree
    # An env-only write does not delete the shared base written earlier.
    only_env = {"rendered/dev/deployment-user.yaml": "kind: Deployment\nimage: user:v9\n"}
    head = repo.write_tree("dev", only_env, msg("v9", env="dev"))
    assert "base/kustomization.yaml" in repo.tree(head)
    assert [c.environment for c in repo.log("dev")] == ["dev", "dev"]


def test_unchanged_tree_is_a_noop(repo: GitOpsRepo) -> None:
    first = repo.write_tree("prod", release_files("prod", "v1"), msg("v1"))
    again = repo.write_tree("prod", release_files("prod", "v1"), msg("v1", reason="retry"))
    assert again == first
    assert len(repo.log("prod")) == 1


def test_revert_restores_previous_tree_byte_for_byte(repo: GitOpsRepo) -> None:
    repo.write_tree("prod", release_files("prod", "v1"), msg("v1"))
    binary = {**release_files("prod", "v2"), "rendered/prod/blob.bin": bytes(range(256)) * 3}
    before = repo.head()
    last = repo.write_tree("prod", binary, msg("v2"))
    reverted = repo.revert(
        last,
        CommitMessage(
            project="shop",
            environment="prod",
            release="v1",
            actor="judge",
            action="rollback",
            reason="error rate 12% vs 0.4% (p<0.001)",
            deployment="43",
        ),
    )
    assert repo.tree(reverted) == repo.tree(before)
    assert reverted != before  # history is kept, not rewritten
    top = repo.log("prod", limit=1)[0]
    assert top.subject == "rollback shop/prod: release v1"
    assert top.reason == "error rate 12% vs 0.4% (p<0.001)"


def test_diff_between_revisions_and_for_a_path(repo: GitOpsRepo) -> None:
    a = repo.write_tree("prod", release_files("prod", "v1"), msg("v1"))
    repo.write_tree("dev", release_files("dev", "v1"), msg("v1", env="dev"))
    b = repo.write_tree("prod", release_files("prod", "v2"), msg("v2"))
    full = repo.diff(a, b)
    assert "-image: user:v1" in full and "+image: user:v2" in full
    assert "rendered/dev/" in full
    only_prod = repo.diff(a, b, "rendered/prod")
    assert "+image: user:v2" in only_prod and "rendered/dev/" not in only_prod
    assert repo.diff(b, b) == ""
    with pytest.raises(GitOpsError, match="unknown revision"):
        repo.diff(a, "0" * 40)


def test_read_and_invalid_input(repo: GitOpsRepo) -> None:
    head = repo.write_tree("prod", release_files("prod", "v1"), msg("v1"))
    assert repo.read(head, "flux/prod.yaml") == "kind: Kustomization\n"
    with pytest.raises(GitOpsError, match="does not exist"):
        repo.read(head, "flux/dev.yaml")
    with pytest.raises(GitOpsError, match="invalid GitOps file path"):
        repo.write_tree("prod", {"../escape.yaml": "x"}, msg("v1"))
    with pytest.raises(GitOpsError, match="invalid environment name"):
        repo.write_tree("Prod/../x", {}, msg("v1"))


def test_concurrent_writers_in_threads_all_land(tmp_path: Path) -> None:
    bare = tmp_path / "data" / "shop-gitops.git"
    GitOpsRepo(bare, tmp_path / "w0").ensure()
    writers = [GitOpsRepo(bare, tmp_path / f"w{i % 2}") for i in range(6)]  # two share a work dir
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            env = f"env{i}"
            writers[i].write_tree(env, {f"rendered/{env}/a.yaml": f"n: {i}\n"}, msg(f"r{i}", env=env))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    final = GitOpsRepo(bare, tmp_path / "reader")
    final.ensure()
    tree = final.tree(final.head())
    assert {f"rendered/env{i}/a.yaml" for i in range(6)} <= set(tree)
    assert len(final.log()) == 7  # initial + six, linear history
    assert all(len(c.parents) == 1 for c in final.log()[:-1])


def _process_writer(bare: str, work: str, env: str) -> None:
    r = GitOpsRepo(bare, work)
    r.ensure()
    for i in range(3):
        r.write_tree(env, {f"rendered/{env}/a.yaml": f"n: {i}\n"}, msg(f"r{i}", env=env))


def test_concurrent_writer_processes_share_one_work_dir(tmp_path: Path) -> None:
    bare, work = str(tmp_path / "g.git"), str(tmp_path / "work")
    GitOpsRepo(bare, work).ensure()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_writer, args=(bare, work, f"e{i}")) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    reader = GitOpsRepo(bare, tmp_path / "reader")
    reader.ensure()
    assert len(reader.log("e0")) == 3 and len(reader.log("e1")) == 3


def test_push_rejected_by_a_competing_push_is_rebased_not_forced(tmp_path: Path) -> None:
    bare = tmp_path / "g.git"
    ours = GitOpsRepo(bare, tmp_path / "ours")
    ours.ensure()
    theirs = GitOpsRepo(bare, tmp_path / "theirs")
    theirs.ensure()
    # A pre-push hook in our clone lets another writer win the race once, between our commit and our push.
    marker = tmp_path / "raced"
    hook = tmp_path / "ours" / ".git" / "hooks" / "pre-push"
    competing = tmp_path / "competitor"
    git(tmp_path, "clone", "-q", str(bare), str(competing))
    hook.write_text(
        "#!/bin/sh\n"
        f"[ -e {marker} ] && exit 0\n"
        f"touch {marker}\n"
        f"cd {competing} && mkdir -p rendered/dev && echo 'from: them' > rendered/dev/x.yaml && "
        "git add -A && git -c user.name=Other -c user.email=o@x commit -qm 'their change' && "
        "git push -q origin HEAD:main\n"
    )
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    head = ours.write_tree("prod", release_files("prod", "v1"), msg("v1"))
    assert marker.exists() and ours.last_push_attempts == 2
    subjects = git(bare, "log", "--format=%s", "main").splitlines()
    assert subjects == [
        "deploy shop/prod: release v1 (canary)",
        "their change",
        "initialise GitOps repository",
    ]
    assert git(bare, "rev-parse", "main") == head
    assert theirs.tree(theirs.head())["rendered/dev/x.yaml"] == b"from: them\n"
