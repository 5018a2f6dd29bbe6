"""Namespace takeover: project B tries to act on project A's namespace (`microshop-dev`), on a real server.

A namespace belongs to exactly one environment of one project. B may not claim A's namespace through the API
(a new project's environments or a new environment) nor through its own juanie.yaml, and B's token never reads what
runs in A's namespace: its workloads, its logs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server_support import Server, git, microshop_source, start_server, stop_everything, wait_run
from tests.support import free_port, wait_until

pytestmark = pytest.mark.slow
A_NAMESPACE = "microshop-dev"
MARKER = "A-PRIVATE-LOG-LINE-7f3c"
BOB_PASSWORD = "bob-long-password-1"


def _workload(release_dir: Path) -> dict[str, Any]:
    """One process in A's namespace that says something only A may read."""
    script = f"import time; print('{MARKER}', flush=True); time.sleep(600)"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ledger", "namespace": A_NAMESPACE, "labels": {"app.kubernetes.io/name": "ledger"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "ledger", "image": f"file://{release_dir}", "command": [sys.executable, "-c", script]}]}}},
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("takeover")
    server = start_server(base / "data", env={"JUANIE_ENGINE": "local", "JUANIE_GATEWAY_PORT": str(free_port()),
                                              "JUANIE_GATEWAY_ADMIN_PORT": str(free_port())})
    try:
        server.ok("POST", "/api/projects", json={"name": "microshop"})  # A: dev's namespace is microshop-dev
        server.ok("POST", "/api/users", json={"username": "bob", "password": BOB_PASSWORD})
        bob = httpx.post(server.url + "/api/auth/login", auth=("bob", BOB_PASSWORD), json={"token_name": "t"})
        assert bob.status_code == 200, bob.text
        release_dir = base / "ledger"
        release_dir.mkdir()
        yield {"server": server, "bob": bob.json()["token"], "base": base, "release_dir": release_dir}
    finally:
        stop_everything(server)


def _refused_naming_a(response: httpx.Response) -> None:
    assert response.status_code == 409, response.text
    message = response.json()["error"]["message"]
    assert "microshop-dev" in message and "belongs to project 'microshop'" in message, message


def test_b_cannot_declare_a_namespace_of_a_through_the_api(world: dict[str, Any]) -> None:
    server: Server = world["server"]
    created = server.api("POST", "/api/projects", token=world["bob"], json={
        "name": "bshop", "environments": [{"name": "dev", "namespace": A_NAMESPACE}]})
    _refused_naming_a(created)
    assert server.api("GET", "/api/projects/bshop").status_code == 404  # nothing half-created

    server.ok("POST", "/api/projects", token=world["bob"], json={"name": "bshop"})
    added = server.api("POST", "/api/projects/bshop/environments", token=world["bob"],
                       json={"name": "shadow", "namespace": A_NAMESPACE})
    _refused_naming_a(added)
    names = [e["namespace"] for e in server.ok("GET", "/api/projects/bshop", token=world["bob"])["environments"]]
    assert A_NAMESPACE not in names and "bshop-dev" in names
    assert sum(1 for p in server.ok("GET", "/api/projects")["items"] for e in p["environments"]
               if e["namespace"] == A_NAMESPACE) == 1


def test_b_cannot_declare_a_namespace_of_a_in_its_juanie_yaml(world: dict[str, Any]) -> None:
    server: Server = world["server"]
    source = microshop_source(world["base"] / "bsource")
    spec = (source / "juanie.yaml").read_text()
    declared = spec.replace("project:\n  name: microshop\n", "project:\n  name: bwares\n").replace(
        "environments:\n  dev:\n", f"environments:\n  dev:\n    namespace: {A_NAMESPACE}\n")
    assert declared.count(A_NAMESPACE) == 1 and "name: bwares" in declared, "microshop's juanie.yaml changed"
    (source / "juanie.yaml").write_text(declared)
    git(source, "commit", "-qam", "take microshop's dev namespace")
    server.ok("POST", "/api/projects", json={"name": "bwares", "repo_url": str(source)})  # local repos: admins
    server.ok("PUT", "/api/projects/bwares/members", json={"user": "bob", "role": "owner"})
    wait_until(lambda: server.ok("GET", "/api/projects/bwares")["status"] == "active", timeout=60,
               message="bwares active")
    run = server.ok("POST", "/api/projects/bwares/runs", token=world["bob"], json={"ref": "main"})
    done = wait_run(server, run["id"], timeout=120)
    assert done["status"] == "failed", done
    assert "environments.dev.namespace" in done["error"], done["error"]
    assert 'namespace "microshop-dev" belongs to project "microshop"' in done["error"], done["error"]
    releases = server.ok("GET", "/api/projects/bwares/releases")["items"]
    assert releases == []  # no release, so nothing of B can ever be deployed into microshop-dev


def test_b_token_reads_nothing_of_what_runs_in_a_namespace(world: dict[str, Any]) -> None:
    server: Server = world["server"]
    applied = server.api("POST", "/api/engine/apply", json={"namespace": A_NAMESPACE,
                                                            "manifests": [_workload(world["release_dir"])]})
    assert applied.status_code == 200, applied.text
    assert applied.json()["env"]["project"] == "microshop"  # the engine records the namespace's one owner
    wait_until(lambda: MARKER in server.api("GET", "/api/projects/microshop/environments/dev/logs").text,
               timeout=60, interval=0.5, message="A's workload to log its line")

    bob = world["bob"]
    if server.api("GET", "/api/projects/bshop", token=bob).status_code == 404:
        server.ok("POST", "/api/projects", token=bob, json={"name": "bshop"})
    # The takeover: an environment of B's own, pointed at A's namespace, then read through B's own routes.
    _refused_naming_a(server.api("POST", "/api/projects/bshop/environments", token=bob,
                                 json={"name": "spy", "namespace": A_NAMESPACE}))
    attempts = [
        ("GET", "/api/projects/bshop/environments/spy/status"),
        ("GET", "/api/projects/bshop/environments/spy/logs"),
        ("GET", "/api/projects/bshop/environments/spy/logs?follow=1"),
        ("GET", "/api/projects/microshop/environments/dev/status"),
        ("GET", "/api/projects/microshop/environments/dev/logs"),
        ("GET", f"/api/engine/namespaces/{A_NAMESPACE}"),
        ("GET", "/api/engine/namespaces"),
        ("GET", "/api/logs?project=microshop"),
        ("POST", "/api/engine/apply"),
    ]
    for method, path in attempts:
        body = {"namespace": A_NAMESPACE, "manifests": []} if method == "POST" else None
        response = server.api(method, path, token=bob, json=body)
        assert response.status_code in (403, 404), f"{method} {path}: {response.status_code} {response.text[:300]}"
        assert MARKER not in response.text and "ledger" not in response.text, f"{method} {path} leaks"
    # B's own environments show B's own namespaces, and nothing runs there.
    for env in server.ok("GET", "/api/projects/bshop", token=bob)["environments"]:
        assert env["namespace"].startswith("bshop-")
        status = server.ok("GET", f"/api/projects/bshop/environments/{env['name']}/status", token=bob)
        assert status["workloads"] == [] and status["env"]["namespace"] == env["namespace"]
