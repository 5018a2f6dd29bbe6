"""Progressive delivery end to end on the local engine, with real processes, real git and load through the gateway:
a first rolling deploy, approvals, a healthy canary promoted step by step, a bad release rolled back by the judge
with the GitOps revert to show for it, promotion of the exact release, and manual abort."""

from __future__ import annotations

import time

import psutil
import pytest

from tests.load_support import Load
from tests.server_support import git, microshop_source, start_server
from tests.support import free_port, wait_until

pytestmark = pytest.mark.slow


def _faster_canary(source) -> None:
    """The example's staging canary, with short pauses so the test spends seconds, not minutes, per step."""
    spec = (source / "juanie.yaml").read_text()
    spec = spec.replace("""        - {weight: 10, pause: 30s}
        - {weight: 50, pause: 30s}""", """        - {weight: 20, pause: 3s}
        - {weight: 50, pause: 3s}""")
    (source / "juanie.yaml").write_text(spec)
    git(source, "commit", "-qam", "ci: faster staging canary")


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    base = tmp_path_factory.mktemp("delivery")
    source = microshop_source(base / "source")
    _faster_canary(source)
    gateway_port = free_port()
    server = start_server(base / "data", env={"JUANIE_ENGINE": "local", "JUANIE_GATEWAY_PORT": str(gateway_port),
                                              "JUANIE_GATEWAY_ADMIN_PORT": str(free_port())})
    try:
        server.ok("POST", "/api/projects", json={"name": "microshop", "repo_url": str(source)})
        server.ok("PUT", "/api/projects/microshop/secrets/PAYMENT_API_KEY", json={"value": "sk-test-delivery"})
        wait_until(lambda: server.ok("GET", "/api/projects/microshop")["status"] == "active", timeout=30)
        yield server, source, f"http://127.0.0.1:{gateway_port}"
    finally:
        try:
            server.api("POST", "/api/system/down", json={"stop_data_plane": True})
        finally:
            server.proc.wait(60)
        leftovers = [p for p in psutil.process_iter(["cmdline", "environ"])
                     if str(server.data_dir) in " ".join(p.info["cmdline"] or [])
                     or str(server.data_dir) in (p.info.get("environ") or {}).get("DATA_DIR", "")]
        for proc in leftovers:
            proc.kill()
        assert not leftovers, f"processes left behind: {[p.pid for p in leftovers]}"


def _release(server, ref: str = "") -> str:
    run = server.ok("POST", "/api/projects/microshop/runs", json={"ref": ref})
    done = wait_until(lambda: (r := server.ok("GET", f"/api/runs/{run['id']}"))["status"] in (
        "succeeded", "failed") and r, timeout=300, interval=0.5, message="pipeline")
    assert done["status"] == "succeeded", server.ok("GET", f"/api/runs/{run['id']}/logs")
    return done["commit"][:12]


def _deploy(server, env: str, release: str, approve: bool = False) -> dict:
    dep = server.ok("POST", "/api/projects/microshop/deploy", json={"env": env, "release": release,
                                                                    "reason": "test"})
    if approve:
        server.ok("POST", f"/api/deployments/{dep['id']}/approve", json={"reason": "ok"})
    return dep


def _final(server, dep_id: int, timeout: float = 240) -> dict:
    return wait_until(lambda: (d := server.ok("GET", f"/api/deployments/{dep_id}"))["status"] in (
        "success", "rolled_back", "cancelled") and d, timeout=timeout, interval=0.5, message=f"deployment {dep_id}")


def test_first_deploys_are_rolling_and_staging_waits_for_its_approval(shop):
    server, _, gateway = shop
    good = _release(server)
    dev = _final(server, _deploy(server, "dev", good)["id"])
    assert dev["status"] == "success" and dev["strategy"] == "rolling"
    status = server.ok("GET", "/api/projects/microshop/environments/dev/status")
    assert status["health"] == "Healthy" and {w["version"] for w in status["workloads"]} == {good}
    import httpx

    assert httpx.get(f"{gateway}/microshop-dev/payment/").json()["service"] == "payment"
    staging = _deploy(server, "staging", good)
    time.sleep(1.5)  # the controller must hold it: an optional approval waits for its window
    held = server.ok("GET", f"/api/deployments/{staging['id']}")
    assert held["status"] == "pending" and held["approval"]["status"] == "requested"
    server.ok("POST", f"/api/deployments/{staging['id']}/approve", json={"reason": "ship it"})
    assert _final(server, staging["id"])["status"] == "success"
    history = server.ok("GET", "/api/projects/microshop/gitops/log")["items"]
    assert [c["environment"] for c in history[:2]] == ["staging", "dev"]
    assert history[0]["deployment"] == str(staging["id"])


def test_a_bad_release_is_rolled_back_by_the_judge_and_reverted_in_gitops(shop):
    server, source, gateway = shop
    good = server.ok("GET", "/api/projects/microshop/deployments", params={"env": "staging"})["items"][0]["release"]
    payment = source / "microshop" / "payment.py"
    payment.write_text(payment.read_text().replace("FAILURE_RATE = 0.0\n", "FAILURE_RATE = 0.2\n"))
    git(source, "commit", "-qam", "payment: switch provider client")
    bad = _release(server)
    with Load(f"{gateway}/microshop-staging/payment/", rps=40) as load:
        wait_until(lambda: sum(load.outcomes.values()) > 40, timeout=30, message="load running")
        started = time.monotonic()
        dep = _deploy(server, "staging", bad, approve=True)
        final = _final(server, dep["id"])
        took = time.monotonic() - started
    assert final["status"] == "rolled_back" and final["strategy"] == "canary"
    assert any(v["outcome"] == "fail" for v in final["verdicts"])
    assert "rolling back" in final["verdicts"][-1]["sentence"]
    print(f"\nbad release → all-stable in {took:.1f}s; load outcomes {dict(load.outcomes)}")
    assert took < 120
    status = server.ok("GET", "/api/projects/microshop/environments/staging/status")
    assert {w["version"] for w in status["workloads"]} == {good}
    assert not any(w["name"].endswith("-canary") for w in status["workloads"])
    history = server.ok("GET", "/api/projects/microshop/gitops/log", params={"env": "staging"})["items"]
    assert history[0]["subject"].startswith("rollback microshop/staging") and history[1]["release"] == bad
    assert history[0]["reason"] == final["verdicts"][-1]["sentence"]
    kinds = [e["kind"] for e in server.ok("GET", "/api/events", params={
        "project": "microshop", "kind": "deployment.*", "limit": 20})["items"]]
    assert kinds[:2] == ["deployment.rolled_back", "deployment.failed"]
    payment.write_text(payment.read_text().replace("FAILURE_RATE = 0.2\n", "FAILURE_RATE = 0.0\n"))
    git(source, "commit", "-qam", "payment: back to the old client")


def test_a_healthy_canary_is_promoted_through_every_step(shop):
    server, source, gateway = shop
    (source / "CHANGELOG.md").write_text("- a harmless change\n")
    git(source, "add", "-A")
    git(source, "commit", "-qm", "docs: changelog")
    healthy = _release(server)
    with Load(f"{gateway}/microshop-staging/payment/", rps=60) as load:
        wait_until(lambda: sum(load.outcomes.values()) > 60, timeout=30, message="load running")
        dep = _deploy(server, "staging", healthy, approve=True)
        weights_seen = set()

        def finished():
            d = server.ok("GET", f"/api/deployments/{dep['id']}")
            if d.get("weights"):
                weights_seen.add(d["weights"]["canary"])
            return d["status"] in ("success", "rolled_back") and d

        final = wait_until(finished, timeout=420, interval=0.3, message="promotion")
    assert final["status"] == "success", final
    assert {20, 50} <= weights_seen
    assert any(v["outcome"] == "pass" for v in final["verdicts"])
    assert load.failed == 0, dict(load.outcomes)
    status = server.ok("GET", "/api/projects/microshop/environments/staging/status")
    assert {w["version"] for w in status["workloads"]} == {healthy}


def test_promotion_deploys_the_exact_release_and_prod_needs_its_approval(shop):
    server, _, _ = shop
    staging_release = server.ok("GET", "/api/projects/microshop/deployments", params={
        "env": "staging", "status": "success"})["items"][0]["release"]
    preview = server.ok("GET", "/api/projects/microshop/promote/preview", params={"from": "staging", "to": "prod"})
    assert preview["release"] == staging_release and "kind: Deployment" in preview["diff"]
    dep = server.ok("POST", "/api/projects/microshop/promote", json={"from": "staging", "to": "prod"})
    assert dep["release"] == staging_release and dep["kind"] == "promote"
    assert dep["approval"]["mode"] == "required"
    reject = server.api("POST", f"/api/deployments/{dep['id']}/reject", json={})
    assert reject.status_code == 422  # a rejection needs a reason
    server.ok("POST", f"/api/deployments/{dep['id']}/reject", json={"reason": "change freeze"})
    assert _final(server, dep["id"])["status"] == "cancelled"
