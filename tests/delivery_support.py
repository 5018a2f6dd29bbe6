"""Delivery test helpers: build releases through the real pipeline, deploy, wait for the end."""

from __future__ import annotations

from typing import Any

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


def deploy(server: Server, env: str, release: str, approve: bool = False) -> dict:
    dep = server.ok("POST", "/api/projects/microshop/deploy", json={"env": env, "release": release,
                                                                    "reason": "test"})
    if approve:
        server.ok("POST", f"/api/deployments/{dep['id']}/approve", json={"reason": "ok"})
    return dep


def final(server: Server, dep_id: int, timeout: float = 240) -> dict:
    return wait_until(lambda: (d := server.ok("GET", f"/api/deployments/{dep_id}"))["status"] in (
        "success", "rolled_back", "cancelled") and d, timeout=timeout, interval=0.5, message=f"deployment {dep_id}")


