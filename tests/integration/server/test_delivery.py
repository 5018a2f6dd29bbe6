"""Progressive delivery end to end on the local engine, with real processes, real git and load through the gateway:
a first rolling deploy, approvals, a healthy canary promoted step by step, a bad release rolled back by the judge
with the GitOps revert to show for it, promotion of the exact release, and manual abort."""

from __future__ import annotations

import time

import psutil
import pytest

from tests.delivery_support import deploy as _deploy
from tests.delivery_support import faster_canary as _faster_canary
from tests.delivery_support import final as _final
from tests.delivery_support import release as _release
from tests.load_support import Load
from tests.server_support import git, microshop_source, start_server
from tests.support import free_port, wait_until

pytestmark = pytest.mark.slow


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


def test_blue_green_switches_all_at_once_and_switching_back_takes_seconds(shop):
    server, _, gateway = shop
    releases = [r["version"] for r in server.ok("GET", "/api/projects/microshop/releases")["items"]]
    healthy, older = releases[0], releases[-1]
    first = _deploy(server, "prod", older, approve=True)
    assert _final(server, first["id"])["status"] == "success"
    url = f"{gateway}/microshop-prod/payment/"
    with Load(url, rps=40) as public, Load(url, rps=30, headers={"x-juanie-track": "canary"}) as testers:
        wait_until(lambda: sum(public.outcomes.values()) > 40, timeout=30, message="load running")
        dep = _deploy(server, "prod", healthy, approve=True)
        switched = wait_until(lambda: (d := server.ok("GET", f"/api/deployments/{dep['id']}"))["phase"] == "promoting"
                              and (d.get("weights") or {}).get("canary") == 100 and d, timeout=240, interval=0.2,
                              message="the switch to the new version")
        assert switched["strategy"] == "blue_green"
        started = time.monotonic()
        server.ok("POST", f"/api/deployments/{dep['id']}/abort", json={"reason": "switch back"})
        wait_until(lambda: (server.ok("GET", f"/api/deployments/{dep['id']}").get("weights") or {}).get(
            "stable") == 100, timeout=30, interval=0.1, message="traffic back on the old version")
        switch_back = time.monotonic() - started
        final = _final(server, dep["id"])
    print(f"\nblue-green switch-back took {switch_back:.2f}s")
    assert switch_back <= 5.0
    assert final["status"] == "rolled_back"
    assert public.failed == 0 and testers.failed == 0, (dict(public.outcomes), dict(testers.outcomes))
    status = server.ok("GET", "/api/projects/microshop/environments/prod/status")
    assert {w["version"] for w in status["workloads"]} == {older}
