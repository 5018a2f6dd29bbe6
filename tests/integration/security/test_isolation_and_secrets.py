"""Cross-project isolation and the planted secret, on a real server that has run a real pipeline.

Project `microshop` (B) has a secret whose value a pipeline step echoes; user `amy` owns project `alpha` (A) only.
Every route of the OpenAPI document that names B's resources must answer amy with 403/404 and nothing of B; and
the secret's plaintext must appear nowhere a person or a process could read it: API responses, events, logs, files
of the data directory (the database included), GitOps history and UI pages.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import httpx
import pytest

from tests.integration.security.conftest import data_files
from tests.server_support import Server, git, microshop_source, wait_run

pytestmark = pytest.mark.slow
PLANTED = "planted-Secr3t-Vq81xZ"
AMY_PASSWORD = "amy-long-password"


@pytest.fixture(scope="module")
def world(server_factory, tmp_path_factory) -> dict[str, Any]:
    source = microshop_source(tmp_path_factory.mktemp("src") / "microshop")
    spec = (source / "juanie.yaml").read_text()
    echoed = spec.replace("    run: python -m compileall -q microshop",
                          "    run:\n      - python -m compileall -q microshop\n"
                          "      - echo \"token is $PLANTED_TOKEN\"")  # fmt: skip
    assert echoed != spec, "the microshop build step changed; adapt the planted-secret step"
    (source / "juanie.yaml").write_text(echoed)
    git(source, "commit", "-qam", "ci: print a secret")
    server = server_factory("world")
    server.ok("POST", "/api/projects", json={"name": "alpha"})
    server.ok("POST", "/api/projects", json={"name": "microshop", "repo_url": str(source)})
    server.ok("PUT", "/api/projects/microshop/secrets/PLANTED_TOKEN", json={"value": PLANTED})
    server.ok("POST", "/api/users", json={"username": "amy", "password": AMY_PASSWORD})
    server.ok("PUT", "/api/projects/alpha/members", json={"user": "amy", "role": "owner"})
    run = server.ok("POST", "/api/projects/microshop/runs", json={"ref": "main"})
    done = wait_run(server, run["id"])
    assert done["status"] == "succeeded", server.ok("GET", f"/api/runs/{run['id']}/logs")
    amy = httpx.post(server.url + "/api/auth/login", auth=("amy", AMY_PASSWORD), json={"token_name": "t"}).json()
    deployments = server.ok("GET", "/api/projects/microshop/deployments")["items"]
    releases = server.ok("GET", "/api/projects/microshop/releases")["items"]
    return {"server": server, "run": done, "amy": amy["token"], "deployments": deployments,
            "release": releases[0]["version"] if releases else "none"}  # fmt: skip


def _routes(server: Server) -> list[tuple[str, str]]:
    spec = server.api("GET", "/api/openapi.json").json()
    return [(m.upper(), p) for p, methods in spec["paths"].items() for m in methods]


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _b_values(world: dict[str, Any]) -> dict[str, str]:
    dep = world["deployments"][0]["id"] if world["deployments"] else 1
    return {"project": "microshop", "owner": "microshop", "env": "dev", "name": "PLANTED_TOKEN", "kind": "user",
            "run_id": str(world["run"]["id"]), "deployment_id": str(dep), "version": world["release"],
            "token_id": "1", "username": "admin", "team": "core", "namespace": "microshop-dev",
            "silence_id": "x"}  # fmt: skip


def test_a_member_of_one_project_gets_nothing_of_another(world):
    server, amy = world["server"], world["amy"]
    values = _b_values(world)
    b_marks = [PLANTED, world["run"]["commit"], world["run"]["commit"][:12]]
    scoped = [(m, p) for m, p in _routes(server) if re.search(r"\{(project|owner|run_id|deployment_id)\}", p)]
    assert len(scoped) >= 40
    for method, path in scoped:
        url = _fill(path, values)
        response = server.api(method, url, token=amy, json={})
        assert response.status_code in (403, 404), f"{method} {url}: {response.status_code} {response.text[:300]}"
        assert not any(mark in response.text for mark in b_marks), f"{method} {url} leaks: {response.text[:300]}"
    # The same user still reaches their own project: the 404s above are isolation, not a broken token.
    assert server.api("GET", "/api/projects/alpha", token=amy).status_code == 200
    # Listings and filters by project name reveal nothing either.
    assert [p["name"] for p in server.ok("GET", "/api/projects", token=amy)["items"]] == ["alpha"]
    events = server.api("GET", "/api/events", token=amy, params={"project": "microshop", "limit": 500}).json()
    assert events["items"] == []
    everything = server.api("GET", "/api/events", token=amy, params={"limit": 500}).text
    assert "microshop" not in everything and world["run"]["commit"][:12] not in everything
    for path in ("/api/alerts", "/api/alerts/rules", "/api/silences", "/api/logs", "/api/metrics/query"):
        response = server.api("GET", path, token=amy, params={"project": "microshop", "query": "up"})
        assert response.status_code in (403, 404, 422) or "microshop" not in response.text, (path, response.text)


def _get_everything(server: Server, values: dict[str, str]) -> dict[str, str]:
    texts = {}
    for method, path in _routes(server):
        if method != "GET" or path.endswith("/stream"):
            continue
        url = _fill(path, values)
        response = server.api("GET", url, params={"limit": 500} if "{" not in path else None)
        texts[url] = response.text
    return texts


def test_the_planted_secret_never_shows_anywhere(world):
    server = world["server"]
    run_id = world["run"]["id"]
    logs = server.api("GET", f"/api/runs/{run_id}/logs").text
    assert "token is ***" in logs, "the step did not echo the masked secret; the test would prove nothing"
    texts = _get_everything(server, _b_values(world))
    assert len(texts) >= 30 and sum(1 for t in texts.values() if '"error"' not in t[:20]) >= 15
    leaks = [url for url, text in texts.items() if PLANTED in text]
    assert leaks == []
    assert PLANTED not in server.api("GET", "/api/events", params={"limit": 500}).text
    assert PLANTED not in server.log()
    for file in data_files(server.data_dir):  # the database too: secrets are stored encrypted
        assert PLANTED.encode() not in file.read_bytes(), file
    repos = list((server.data_dir / "gitops").glob("*.git")) if (server.data_dir / "gitops").exists() else []
    for repo in repos:
        history = subprocess.run(
            ["git", "--git-dir", str(repo), "log", "-p", "--all"], capture_output=True, text=True, check=True
        ).stdout
        assert PLANTED not in history, repo


def test_ui_pages_never_show_the_planted_secret(world):
    server = world["server"]
    server.ok("POST", "/api/users", json={"username": "ursula", "password": "ursula-password", "is_admin": True})
    with httpx.Client(base_url=server.url, timeout=60) as browser:
        login = browser.post("/api/auth/login", auth=("ursula", "ursula-password"), json={"session": True})
        assert login.status_code == 200 and browser.cookies.get("juanie_session")
        pages = ["/", "/projects/microshop", "/events", f"/projects/microshop/runs/{world['run']['id']}",
                 "/projects/microshop/gitops", "/projects/microshop/settings", "/settings/tokens"]  # fmt: skip
        for page in pages:
            response = browser.get(page)
            assert response.status_code == 200, (page, response.status_code)
            assert PLANTED not in response.text, page
        assert "microshop" in browser.get("/projects/microshop").text
