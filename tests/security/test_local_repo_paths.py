"""A project's repository as a path on the server's own disk, on a real server.

A local `repo_url` / `gitops_url` makes the server read whatever git repository it can reach — other projects'
GitOps history and mirrors in its data directory included. So: non-admins may not use local paths at all; admins
only under JUANIE_LOCAL_REPO_ROOTS; the data directory never, even under a root and whatever the route to it
(a `file://` URL, a symlink, a `.git` file). And a URL stored behind the API's back is refused when the server
fetches it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.server_support import Server, git, start_server, stop_everything

PASSWORD = "nina-long-password"


@dataclass
class World:
    server: Server
    data: Path
    allowed: Path
    outside: Path
    nina: str  # a non-admin user's token
    victim_gitops: Path  # another project's GitOps repository, inside the data directory


def _repo(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "README.md").write_text("a project\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "initial")
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = Path(os.path.realpath(tmp_path_factory.mktemp("local-repos")))
    allowed, outside = base / "allowed", base / "outside"
    _repo(allowed / "shop")
    _repo(outside / "stray")
    data = allowed / "juanie-data"  # the data directory under an allowed root: still never allowed
    server = start_server(data, env={"JUANIE_LOCAL_REPO_ROOTS": str(allowed), "JUANIE_CONTROLLERS": "0"})
    try:
        server.ok("POST", "/api/users", json={"username": "nina", "password": PASSWORD})
        nina = httpx.post(server.url + "/api/auth/login", auth=("nina", PASSWORD), json={"token_name": "t"})
        server.ok("POST", "/api/projects", json={"name": "victim"})
        server.ok("GET", "/api/projects/victim/gitops/log")  # creates its GitOps repository, with a commit
        victim_gitops = data / "gitops" / "victim.git"
        assert (victim_gitops / "HEAD").exists()
        yield World(server, data, allowed, outside, nina.json()["token"], victim_gitops)
    finally:
        stop_everything(server)


def _error(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    return response.json()["error"]


LOCAL_URLS = {
    "a system directory": lambda w: "/etc",
    "the data directory as file://": lambda w: f"file://{w.data}",
    "a repository under an allowed root": lambda w: str(w.allowed / "shop"),
    "the same as file://": lambda w: f"file://{w.allowed}/shop",
}


@pytest.mark.parametrize("what", LOCAL_URLS)
def test_a_non_admin_cannot_register_a_local_path(world: World, what: str) -> None:
    url = LOCAL_URLS[what](world)
    response = world.server.api("POST", "/api/projects", token=world.nina, json={"name": "mine", "repo_url": url})
    error = _error(response, 403)
    assert error["location"] == "repo_url" and "installation admin" in error["message"]
    assert world.server.api("GET", "/api/projects/mine").status_code == 404


def test_a_non_admin_cannot_point_their_project_at_a_local_path_later(world: World) -> None:
    created = world.server.api("POST", "/api/projects", token=world.nina,
                               json={"name": "nina-shop", "repo_url": "https://git.example.com/nina/shop.git"})
    assert created.status_code == 201, created.text  # a remote is fine for anyone
    described = world.server.api("PATCH", "/api/projects/nina-shop", token=world.nina, json={"description": "mine"})
    assert described.status_code == 200, described.text  # she may change her project: only the path is refused
    for field, url in (("repo_url", str(world.victim_gitops)), ("gitops_url", f"file://{world.data}"),
                       ("gitops_url", str(world.allowed / "shop"))):
        response = world.server.api("PATCH", "/api/projects/nina-shop", token=world.nina, json={field: url})
        assert _error(response, 403)["location"] == field
    project = world.server.ok("GET", "/api/projects/nina-shop")
    assert project["gitops_url"] == "" and project["repo_url"] == "https://git.example.com/nina/shop.git"


def test_an_admin_may_use_a_local_path_only_under_the_roots(world: World) -> None:
    inside = world.server.api("POST", "/api/projects", json={"name": "shop", "repo_url": str(world.allowed / "shop")})
    assert inside.status_code == 201, inside.text
    for url in ("/etc", str(world.outside / "stray"), f"file://{world.outside}/stray"):
        response = world.server.api("POST", "/api/projects", json={"name": "stray", "repo_url": url})
        error = _error(response, 422)
        assert error["location"] == "repo_url" and "JUANIE_LOCAL_REPO_ROOTS" in error["message"], url
    helper = world.server.api("POST", "/api/projects", json={"name": "stray", "repo_url": "ext::sh -c id"})
    assert "remote helpers" in _error(helper, 422)["message"]
    assert world.server.api("GET", "/api/projects/stray").status_code == 404


def test_the_data_directory_is_never_a_repository_whatever_the_route(world: World) -> None:
    link = world.allowed / "innocent"
    link.symlink_to(world.victim_gitops)  # a symlink placed under an allowed root, into the data directory
    worktree = world.allowed / "worktree"
    worktree.mkdir()
    (worktree / ".git").write_text(f"gitdir: {world.victim_gitops}\n")  # git's own kind of symlink
    sibling = world.allowed / "decoy"  # `git upload-pack decoy` also tries decoy.git
    (world.allowed / "decoy.git").symlink_to(world.victim_gitops)
    for url in (str(world.data), f"file://{world.data}", str(world.victim_gitops), str(link), f"file://{link}",
                str(worktree), str(sibling), f"{world.allowed}/../allowed/juanie-data/gitops/victim.git"):
        response = world.server.api("POST", "/api/projects", json={"name": "peek", "repo_url": url})
        assert "data directory" in _error(response, 422)["message"], url
        response = world.server.api("PATCH", "/api/projects/victim", json={"gitops_url": url})
        assert _error(response, 422)["location"] == "gitops_url", url


def test_a_url_stored_behind_the_apis_back_is_refused_when_the_server_fetches(world: World) -> None:
    world.server.ok("POST", "/api/projects", json={"name": "sneaky", "repo_url": str(world.allowed / "shop")})
    with sqlite3.connect(world.data / "juanie.db", timeout=30) as db:  # another path to the database than the API
        db.execute("UPDATE projects SET repo_url = ?, gitops_url = ? WHERE name = 'sneaky'",
                   (str(world.victim_gitops), str(world.victim_gitops)))
    run = world.server.api("POST", "/api/projects/sneaky/runs", json={"ref": "main"})
    assert "data directory" in _error(run, 422)["message"]
    log = world.server.api("GET", "/api/projects/sneaky/gitops/log")
    assert "data directory" in _error(log, 422)["message"]
    assert world.server.ok("GET", "/api/projects/sneaky/runs")["items"] == []
