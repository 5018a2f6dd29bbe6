"""Delivery test helpers: build releases through the real pipeline, deploy, wait for the end."""

from __future__ import annotations

from typing import Any

import httpx

from tests.server_support import Server, git
from tests.support import wait_until


def faster_canary(source: Any) -> None:
    """The example's staging canary, with short pauses so the test spends seconds, not minutes, per step."""
    spec = (source / "juanie.yaml").read_text()
    spec = spec.replace("""        - {weight: 10, pause: 30s}
        - {weight: 50, pause: 30s}""", """        - {weight: 20, pause: 3s}
        - {weight: 50, pause: 3s}""")
    spec = spec.replace("""  prod:
    strategy:
      type: canary
      steps:
        - {weight: 5, pause: 1m}
        - {weight: 25, pause: 1m}
        - {weight: 50, pause: 2m}
        - {weight: 100, pause: 0s}""", """  prod:
    strategy: {type: blue_green, auto_promote_after: 5s}""")
    (source / "juanie.yaml").write_text(spec)
    git(source, "commit", "-qam", "ci: faster staging canary")


def release(server: Server, ref: str = "") -> str:
    run = server.ok("POST", "/api/projects/microshop/runs", json={"ref": ref})
    done = wait_until(lambda: (r := server.ok("GET", f"/api/runs/{run['id']}"))["status"] in (
        "succeeded", "failed") and r, timeout=300, interval=0.5, message="pipeline")
    assert done["status"] == "succeeded", server.ok("GET", f"/api/runs/{run['id']}/logs")
    return done["commit"][:12]


REVIEWER, REVIEWER_PASSWORD = "reviewer", "reviewer-password-1"
_reviewer_tokens: dict[str, str] = {}


def reviewer_token(server: Server, project: str = "microshop", env: str = "prod") -> str:
    """A second person who may approve `env` (four eyes: the requester of a required approval cannot): a
    maintainer of the project with an explicit deploy grant there (prod's deploys are restricted)."""
    if server.url not in _reviewer_tokens:
        server.ok("POST", "/api/users", json={"username": REVIEWER, "password": REVIEWER_PASSWORD})
        login = httpx.post(server.url + "/api/auth/login", auth=(REVIEWER, REVIEWER_PASSWORD),
                           json={"token_name": "review"})
        assert login.status_code == 200, login.text
        _reviewer_tokens[server.url] = login.json()["token"]
    server.ok("PUT", f"/api/projects/{project}/members", json={"user": REVIEWER, "role": "maintainer"})
    server.ok("PUT", f"/api/projects/{project}/environments/{env}/grants",
              json={"user": REVIEWER, "permission": "deploy"})
    return _reviewer_tokens[server.url]


def approve_deployment(server: Server, dep: dict, reason: str = "ok") -> dict:
    """Approve as the requester where that is allowed, as a second person where the approval is required."""
    required = (dep.get("approval") or {}).get("mode") == "required"
    token = reviewer_token(server, dep["project"], dep["environment"]) if required else None
    response = server.api("POST", f"/api/deployments/{dep['id']}/approve", token=token, json={"reason": reason})
    assert response.status_code == 200, response.text
    return response.json()


def deploy(server: Server, env: str, release: str, approve: bool = False) -> dict:
    dep = server.ok("POST", "/api/projects/microshop/deploy", json={"env": env, "release": release,
                                                                    "reason": "test"})
    if approve:
        approve_deployment(server, dep)
    return dep


def final(server: Server, dep_id: int, timeout: float = 240) -> dict:
    return wait_until(lambda: (d := server.ok("GET", f"/api/deployments/{dep_id}"))["status"] in (
        "success", "rolled_back", "cancelled") and d, timeout=timeout, interval=0.5, message=f"deployment {dep_id}")


