"""The gates on the road to prod, attacked on a real server with the local engine and real microshop releases.

- A fresh project's prod restricts deploys to owners and explicit grants.
- The person who requested a deployment to an environment whose approval is required cannot approve it (four eyes).
- An owner may override that with a reason: the deployment proceeds, and the override is its own audited event.
- A rollback skips approval and strategy, so it may only go back to a release that was live in that environment;
  anything else must be deployed (and approved).

The tests run in order on one server: the releases they build and the deployments they make are the story.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.delivery_support import final, release, reviewer_token
from tests.server_support import Server, git, microshop_source, register_microshop, start_server, stop_everything
from tests.support import free_port

pytestmark = pytest.mark.slow
DEV_PASSWORD = "dave-long-password-1"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("gates")
    source = microshop_source(base / "source")
    _rolling_prod(source)
    server = start_server(base / "data", env={"JUANIE_ENGINE": "local", "JUANIE_GATEWAY_PORT": str(free_port()),
                                              "JUANIE_GATEWAY_ADMIN_PORT": str(free_port())})
    try:
        register_microshop(server, source, "sk-gates")
        first = release(server)
        (source / "CHANGELOG.md").write_text("- a second release\n")
        git(source, "add", "-A")
        git(source, "commit", "-qm", "docs: changelog")
        second = release(server)
        yield {"server": server, "source": source, "releases": [first, second]}
    finally:
        stop_everything(server)


def _rolling_prod(source: Path) -> None:
    """prod rolls (no canary to feed with traffic): these tests are about who may let a release in, not how."""
    spec = (source / "juanie.yaml").read_text()
    canary = """  prod:
    strategy:
      type: canary
      steps:
        - {weight: 5, pause: 1m}
        - {weight: 25, pause: 1m}
        - {weight: 50, pause: 2m}
        - {weight: 100, pause: 0s}
"""
    assert canary in spec, "microshop's prod strategy changed; adapt this test"
    (source / "juanie.yaml").write_text(spec.replace(canary, "  prod:\n    strategy: {type: rolling, max_surge: 1}\n"))
    git(source, "commit", "-qam", "ci: prod rolls")


def _deploy(server: Server, env: str, version: str) -> dict[str, Any]:
    """The admin (site administrator and the project's creator, so its owner) asks for a deployment."""
    return server.ok("POST", "/api/projects/microshop/deploy", json={"env": env, "release": version,
                                                                     "reason": "security test"})


def _live(server: Server, env: str) -> str:
    return server.ok("GET", "/api/projects/microshop/deployments", params={
        "env": env, "status": "success", "limit": 1})["items"][0]["release"]


def test_a_fresh_projects_prod_restricts_deploys_to_owners_and_grants(shop: dict[str, Any]) -> None:
    server: Server = shop["server"]
    server.ok("POST", "/api/projects", json={"name": "fresh"})
    envs = {e["name"]: e for e in server.ok("GET", "/api/projects/fresh")["environments"]}
    assert envs["prod"]["deploy_restricted"] is True
    assert envs["dev"]["deploy_restricted"] is False and envs["staging"]["deploy_restricted"] is False
    # What restricted means: a developer of microshop deploys to dev but not to prod.
    server.ok("POST", "/api/users", json={"username": "dave", "password": DEV_PASSWORD})
    server.ok("PUT", "/api/projects/microshop/members", json={"user": "dave", "role": "developer"})
    dave = httpx.post(server.url + "/api/auth/login", auth=("dave", DEV_PASSWORD), json={"token_name": "t"})
    assert server.ok("GET", "/api/projects/microshop/environments/prod")["deploy_restricted"] is True
    refused = server.api("POST", "/api/projects/microshop/deploy", token=dave.json()["token"],
                         json={"env": "prod", "release": shop["releases"][0]})
    assert refused.status_code == 403, refused.text
    assert "deploy permission" in refused.json()["error"]["message"]


def test_the_requester_cannot_approve_their_own_required_deployment(shop: dict[str, Any]) -> None:
    server: Server = shop["server"]
    dep = _deploy(server, "prod", shop["releases"][0])
    assert dep["approval"]["mode"] == "required" and dep["approval"]["requested_by"] == "admin"
    own = server.api("POST", f"/api/deployments/{dep['id']}/approve", json={"reason": "lgtm, says me"})
    assert own.status_code == 403, own.text
    assert "four eyes" in own.json()["error"]["message"] and "admin requested" in own.json()["error"]["message"]
    held = server.ok("GET", f"/api/deployments/{dep['id']}")
    assert held["status"] == "pending" and held["approval"]["status"] == "requested"
    # A second person lets it through.
    review = server.api("POST", f"/api/deployments/{dep['id']}/approve", token=reviewer_token(server),
                        json={"reason": "reviewed"})
    assert review.status_code == 200, review.text
    done = final(server, dep["id"])
    assert done["status"] == "success" and done["approval"]["decided_by"] == "reviewer", done


def test_an_owner_override_with_a_reason_proceeds_and_is_audited(shop: dict[str, Any]) -> None:
    server: Server = shop["server"]
    dep = _deploy(server, "prod", shop["releases"][1])
    path = f"/api/deployments/{dep['id']}/override"
    assert server.api("POST", path, json={"reason": ""}).status_code == 422  # never without a reason
    not_owner = server.api("POST", path, token=reviewer_token(server), json={"reason": "I am in a hurry"})
    assert not_owner.status_code == 403 and "owner" in not_owner.json()["error"]["message"], not_owner.text
    # The owner overrides from the CLI, as a person would: never without a reason, and loudly.
    cli_env = {**os.environ, "JUANIE_URL": server.url, "JUANIE_TOKEN": server.token, "COLUMNS": "200"}
    cli = [sys.executable, "-m", "juanie.cli.main", "approve", str(dep["id"]), "--override"]
    bare = subprocess.run(cli, env=cli_env, capture_output=True, text=True, timeout=60)
    assert bare.returncode != 0 and "an override needs a reason" in bare.stdout + bare.stderr
    done_cli = subprocess.run([*cli, "--reason", "hotfix for the checkout outage, INC-42"], env=cli_env,
                              capture_output=True, text=True, timeout=60)
    assert done_cli.returncode == 0, done_cli.stdout + done_cli.stderr
    assert "approval overridden by admin: hotfix for the checkout outage, INC-42" in done_cli.stdout
    overridden = server.ok("GET", f"/api/deployments/{dep['id']}")
    assert overridden["approval"]["status"] == "overridden" and overridden["approval"]["overridden"] is True
    assert overridden["approval"]["decided_by"] == "admin"
    assert overridden["approval"]["reason"] == "hotfix for the checkout outage, INC-42"
    done = final(server, dep["id"])
    assert done["status"] == "success", done
    assert done["approval"]["status"] == "overridden"  # the deployment's approval says so for good
    events = server.ok("GET", "/api/events", params={"kind": "approval.overridden", "project": "microshop"})["items"]
    mine = [e for e in events if e["subject"] == f"deployment/{dep['id']}"]
    assert len(mine) == 1 and mine[0]["actor"] == "admin", events
    assert mine[0]["data"]["reason"] == "hotfix for the checkout outage, INC-42"
    approved = server.ok("GET", "/api/events", params={"kind": "approval.approved", "project": "microshop"})["items"]
    assert not [e for e in approved if e["subject"] == f"deployment/{dep['id']}"]  # an override is not an approval


def test_a_rollback_only_goes_back_to_a_release_that_was_live_in_that_environment(shop: dict[str, Any]) -> None:
    server: Server = shop["server"]
    source = shop["source"]
    first, second = shop["releases"]
    assert _live(server, "prod") == second
    (source / "CHANGELOG.md").write_text("- a release that never reached prod\n")
    git(source, "commit", "-qam", "docs: a third release")
    never = release(server)
    assert final(server, _deploy(server, "dev", never)["id"])["status"] == "success"  # live elsewhere: not enough
    before = len(server.ok("GET", "/api/projects/microshop/deployments", params={"env": "prod"})["items"])
    refused = server.api("POST", "/api/projects/microshop/rollback", json={"env": "prod", "to": never,
                                                                          "reason": "sneak it in"})
    assert refused.status_code == 409, refused.text
    message = refused.json()["error"]["message"]
    assert f"release {never} was never live in microshop/prod" in message and "Deploy it instead" in message
    after = server.ok("GET", "/api/projects/microshop/deployments", params={"env": "prod"})["items"]
    assert len(after) == before and _live(server, "prod") == second  # nothing was created, prod untouched

    back = server.ok("POST", "/api/projects/microshop/rollback", json={"env": "prod", "to": first,
                                                                       "reason": "back to known-good"})
    assert back["kind"] == "rollback" and back["approval"] is None
    done = final(server, back["id"])
    assert done["status"] == "success", done
    assert _live(server, "prod") == first
    status = server.ok("GET", "/api/projects/microshop/environments/prod/status")
    assert {w["version"] for w in status["workloads"]} == {first}
