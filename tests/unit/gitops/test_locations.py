"""Which repository URLs name a path on the server's disk, and which local paths a server accepts. Pure but for
the small trees of directories and links it judges."""

from __future__ import annotations

from pathlib import Path

import pytest

from juanie.domain.errors import Forbidden, Invalid
from juanie.gitops.locations import RepoLocations, local_path


@pytest.mark.parametrize("url", ["https://github.com/acme/shop.git", "https://u:tok@h.example/x.git",
                                 "ssh://git@h.example/x.git", "git://h.example/x.git", "git@github.com:acme/x.git"])
def test_remotes_are_not_local_and_pass_for_anyone(url: str, tmp_path: Path) -> None:
    assert local_path(url) is None
    assert RepoLocations(tmp_path).check(url, is_admin=False) == url


@pytest.mark.parametrize(("url", "path"), [("/srv/shop", "/srv/shop"), ("file:///srv/shop", "/srv/shop"),
                                           ("file://localhost/srv/a%20b", "/srv/a b"), ("shop", "shop")])
def test_paths_and_file_urls_are_local(url: str, path: str) -> None:
    assert local_path(url) == Path(path)


@pytest.mark.parametrize("url", ["ext::sh -c id", "fd::3", "ftp://h/x.git", "file://elsewhere/x"])
def test_helpers_odd_schemes_and_remote_file_hosts_are_refused_for_everyone(url: str) -> None:
    with pytest.raises(Invalid):
        local_path(url)


def test_a_local_path_is_for_admins_under_a_root_and_never_the_data_directory(tmp_path: Path) -> None:
    root, data = tmp_path / "root", tmp_path / "root" / "data"
    (data / "gitops" / "x.git").mkdir(parents=True)
    (root / "shop").mkdir()
    rules = RepoLocations(data, (root,))
    assert rules.check(f"file://{root}/shop") == str(root / "shop")
    with pytest.raises(Forbidden):
        rules.check(str(root / "shop"), is_admin=False)
    with pytest.raises(Invalid, match="JUANIE_LOCAL_REPO_ROOTS"):
        rules.check(str(tmp_path))
    (root / "alternates" / "objects" / "info").mkdir(parents=True)
    (root / "alternates" / "objects" / "info" / "alternates").write_text(f"{data}/gitops/x.git/objects\n")
    (root / "worktree").mkdir()
    (root / "worktree" / ".git").write_text("gitdir: ../data/gitops/x.git\n")
    (root / "link").symlink_to(data)
    for url in (str(data), str(root / "link"), str(root / "worktree"), str(root / "alternates")):
        with pytest.raises(Invalid, match="data directory"):
            rules.check(url)
