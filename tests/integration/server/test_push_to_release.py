"""From push to release with real git, real processes and a real server: webhooks, polling, failing steps,
secret masking, and the GitOps history two releases leave behind."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest

from juanie.controllers.gitops import GitOpsRepos
from juanie.gitops import CommitMessage
from juanie.render import ReleaseRef
from juanie.spec import load_spec
from tests.server_support import git, microshop_source, start_server, wait_run
from tests.support import wait_until

pytestmark = pytest.mark.slow
PLANTED = "planted-s3cret-7Hq2Lw9"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    base = tmp_path_factory.mktemp("push")
    source = microshop_source(base / "source")
    server = start_server(base / "data")
    try:
        server.ok("POST", "/api/projects", json={"name": "microshop", "repo_url": str(source)})
        hook = server.ok("POST", "/api/projects/microshop/webhook")
        server.ok("PUT", "/api/projects/microshop/secrets/PLANTED_TOKEN", json={"value": PLANTED})
        yield server, source, hook["secret"]
    finally:
        server.stop()


def _push_payload(source, branch: str, before: str, after: str) -> bytes:
    message = git(source, "log", "-1", "--format=%s", after)
    return json.dumps({
        "ref": f"refs/heads/{branch}", "before": before, "after": after,
        "repository": {"clone_url": str(source), "html_url": str(source)},
        "pusher": {"name": "dev"},
        "commits": [{"id": after, "message": message, "author": {"name": "Dev", "email": "dev@example.com"}}],
    }).encode()


def _signed(secret: str, body: bytes, delivery: str | None = None) -> dict[str, str]:
    return {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def _commit(source, path: str, text: str, message: str, branch: str = "main") -> str:
    current = git(source, "rev-parse", "--abbrev-ref", "HEAD")
    if current != branch:
        git(source, "checkout", "-q", "-B", branch)
    (source / path).parent.mkdir(parents=True, exist_ok=True)
    (source / path).write_text(text)
    git(source, "add", "-A")
    git(source, "commit", "-qm", message)
    return git(source, "rev-parse", "HEAD")


def test_a_signed_push_reaches_a_release(shop):
    server, source, secret = shop
    before = git(source, "rev-parse", "HEAD")
    after = _commit(source, "CHANGELOG.md", "- first release\n", "docs: changelog")
    body = _push_payload(source, "main", before, after)
    response = server.api("POST", "/api/hooks/git", content=body, headers=_signed(secret, body), token="none")
    assert response.status_code == 202, response.text
    run = wait_run(server, response.json()["run_id"])
    assert run["status"] == "succeeded", server.ok("GET", f"/api/runs/{run['id']}/logs")
    assert [s["stage"] for s in run["steps"]] == ["build", "test", "quality", "package"]
    assert run["trigger"] == "push" and run["target_env"] == "prod" and run["commit"] == after
    release = server.ok("GET", f"/api/projects/microshop/releases/{after[:12]}")
    assert sorted(release["artifacts"]) == ["order", "payment", "product", "user"]
    for service, artifact in release["artifacts"].items():
        assert artifact["image"] == f"juanie.local/microshop/{service}:{after[:12]}"
        assert artifact["content_hash"].startswith("sha256:")
        from pathlib import Path

        assert (Path(artifact["path"]) / "venv" / "bin" / "python").exists()
        assert (Path(artifact["path"]) / "microshop" / f"{service}.py").exists()
    kinds = [e["kind"] for e in server.ok("GET", "/api/events", params={"project": "microshop", "limit": 200})[
        "items"]]
    for kind in ("webhook.push", "pipeline.queued", "pipeline.running", "pipeline.succeeded", "release.created"):
        assert kind in kinds


def test_bad_signatures_and_replays_are_refused_counted_and_summarised(shop):
    server, source, secret = shop
    head = git(source, "rev-parse", "HEAD")
    body = _push_payload(source, "main", head, head)
    forged = server.api("POST", "/api/hooks/git", content=body, headers=_signed("wrong-secret", body), token="x")
    assert forged.status_code == 401
    unsigned = server.api("POST", "/api/hooks/git", content=body, headers={"X-GitHub-Event": "push"}, token="x")
    assert unsigned.status_code == 401
    delivery = str(uuid.uuid4())
    first = server.api("POST", "/api/hooks/git", content=body, headers=_signed(secret, body, delivery), token="x")
    assert first.status_code == 202
    replay = server.api("POST", "/api/hooks/git", content=body, headers=_signed(secret, body, delivery), token="x")
    assert replay.status_code == 401 and "replayed" in replay.json()["error"]["message"]
    assert [r.json()["error"]["details"]["reason"] for r in (forged, unsigned, replay)] == [
        "bad_signature", "no_signature", "replayed"]
    # Every refusal is counted; the timeline gets one summary a minute, not one event per refusal.
    metrics = server.api("GET", "/metrics").text
    for reason in ("bad_signature", "no_signature", "replayed"):
        assert f'juanie_webhook_rejected_total{{reason="{reason}"}} 1.0' in metrics
    rejected = server.ok("GET", "/api/events", params={"kind": "webhook.rejected", "project": "microshop"})["items"]
    assert len(rejected) == 1 and "does not match" in rejected[0]["data"]["reason"]


def test_polling_notices_a_new_branch(shop):
    server, source, _ = shop
    server.ok("PATCH", "/api/projects/microshop", json={"poll_interval_seconds": 5})
    wait_until(lambda: server.ok("GET", "/api/projects/microshop")["poll_interval_seconds"] == 5, timeout=5)
    # Let the poller record the current heads first, then move a branch it has to notice by itself.
    wait_until(lambda: (server.data_dir / "sources").exists(), timeout=30, message="first poll")
    sha = _commit(source, "docs/notes.md", "polling\n", "docs: notes", branch="feature/polling")
    git(source, "checkout", "-q", "main")

    def polled_run():
        runs = server.ok("GET", "/api/projects/microshop/runs")["items"]
        return next((r for r in runs if r["commit"] == sha), None)

    run = wait_until(polled_run, timeout=60, interval=0.5, message="the poller to queue a run")
    assert run["trigger"] == "poll" and run["branch"] == "feature/polling" and run["target_env"] == "dev"
    assert wait_run(server, run["id"])["status"] == "succeeded"


def test_a_failing_test_fails_the_run_and_makes_no_release(shop):
    server, source, _ = shop
    sha = _commit(source, "tests/test_microshop_broken.py",
                  "def test_arithmetic_is_broken():\n    assert 1 + 1 == 3, 'deliberately broken'\n",
                  "test: a broken test", branch="main")
    run = server.ok("POST", "/api/projects/microshop/runs", json={"ref": sha})
    done = wait_run(server, run["id"])
    assert done["status"] == "failed"
    states = {s["stage"]: s["state"] for s in done["steps"]}
    assert states["test"] == "failed" and states["package"] in ("skipped", "cancelled")
    assert "test" in done["error"]
    found = server.ok("GET", f"/api/runs/{run['id']}/logs", params={"q": "deliberately broken"})["items"]
    assert found and all(line["step"] == "test/test" for line in found)
    assert server.api("GET", f"/api/projects/microshop/releases/{sha[:12]}").status_code == 404
    git(source, "revert", "--no-edit", "HEAD")


def test_a_secret_given_to_a_step_never_shows(shop):
    server, source, _ = shop
    spec = (source / "juanie.yaml").read_text()
    spec = spec.replace("    run: python -m compileall -q microshop",
                        "    run:\n      - python -m compileall -q microshop\n"
                        "      - echo \"token is $PLANTED_TOKEN\"")
    sha = _commit(source, "juanie.yaml", spec, "ci: print a secret", branch="main")
    run = server.ok("POST", "/api/projects/microshop/runs", json={"ref": sha})
    done = wait_run(server, run["id"])
    assert done["status"] == "succeeded"
    logs = server.api("GET", f"/api/runs/{run['id']}/logs").text
    assert "token is ***" in logs and PLANTED not in logs
    for path in ("/api/events?limit=500", f"/api/runs/{run['id']}", "/api/projects/microshop/secrets",
                 "/api/projects/microshop"):
        assert PLANTED not in server.api("GET", path).text
    for file in (server.data_dir / "logs").rglob("*"):
        if file.is_file():
            assert PLANTED.encode() not in file.read_bytes(), file
    assert PLANTED not in server.log()


def test_gitops_history_of_two_releases_and_revert_restores_the_tree(shop, tmp_path):
    server, source, _ = shop
    releases = server.ok("GET", "/api/projects/microshop/releases")["items"]
    assert len(releases) >= 2
    older, newer = releases[-1], releases[0]
    spec = load_spec(source / "juanie.yaml")
    repos = GitOpsRepos(server.data_dir)
    shas = []
    for release in (older, newer):
        images = {svc: a["image"] for svc, a in release["artifacts"].items()}
        msg = CommitMessage(project="microshop", environment="dev", release=release["version"], actor="test",
                            reason="deploy for the history test", deployment="t-1", strategy="rolling")
        shas.append(repos.commit_environment("microshop", spec, "dev", ReleaseRef(release["version"], images), msg))
    history = server.ok("GET", "/api/projects/microshop/gitops/log", params={"env": "dev"})["items"]
    assert [c["release"] for c in history[:2]] == [newer["version"], older["version"]]
    assert history[0]["subject"].startswith("deploy microshop/dev: release")
    diff = server.ok("GET", "/api/projects/microshop/gitops/diff", params={"a": shas[0], "b": shas[1]})["diff"]
    assert older["version"] in diff and newer["version"] in diff
    repo = repos.repo("microshop")
    reverted = repo.revert(shas[1], CommitMessage(project="microshop", environment="dev", release=older["version"],
                                                  actor="test", reason="rollback", action="rollback"))
    assert repo.tree(reverted) == repo.tree(shas[0])
