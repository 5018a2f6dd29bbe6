"""The whole loop on microshop, on the local engine, with load running through the gateway all along — once with the
control plane on SQLite and once on PostgreSQL.

microshop itself runs against this machine's real PostgreSQL, Redis and RabbitMQ, given to it through Juanie's own
mechanisms: the project's secrets (`DATABASE_URL`, `REDIS_URL`, `AMQP_URL`) and juanie.yaml's `env` (the Redis
prefix and the exchange, unique to the test). Nothing is mocked.

1. `juanie demo up` builds the first release and puts it live in dev; the UI shows microshop's three
   environments. That release becomes the baseline of staging and prod. Then a signed push of `develop` →
   pipeline (build, test, quality, package) → release → auto-deploy to dev → dev live, and microshop's order,
   product cache and order event really went to PostgreSQL, Redis and RabbitMQ.
2. The same release is promoted to staging in the web UI, waits for its approval, is approved in the UI (real
   Chromium: the button, the reason), and canaries under load while the deployment page shows its weights move.
3. Promoted to prod (a required approval, given through the API), it canaries there too: one release everywhere.
4. A bad release (the payment bug `juanie demo bad-release` commits) canaries on staging; the judge rolls it back;
   the deployment page shows the verdict and the rolled-back state; GitOps history holds the revert, with the
   verdict as its reason; traffic is all on stable.
5. A fault injected at the gateway (abort 50%) fires HighErrorRate, and a real HTTP receiver gets the notification.

Requests through the gateway may fail only inside two windows, and only in the way the window explains: the bad
canary's own 500s on staging while it ran, and the gateway's injected 503s on dev while the fault was on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from juanie.cli.demo_cmds import source_repo
from tests.delivery_support import approve_deployment, final
from tests.e2e.loop_support import Backing, Window, juanie, push, shape_source, unexpected_failures
from tests.e2e.ui_helpers import screenshot
from tests.load_support import Load
from tests.observe_support import (
    LOOPBACK_ALLOWED,
    http_receiver,  # noqa: F401  (fixture)
    inject_fault,
)
from tests.server_support import Server, git, register_microshop, start_server, stop_everything, wait_run
from tests.support import free_port, wait_until

expect = pytest.importorskip("playwright.sync_api").expect
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PROJECT = "microshop"
SERVICES = ("order", "payment", "product", "user")
MANAGER, MANAGER_PASSWORD = "release-manager", "release-manager-password-1"
LIVE_MS = 30_000


@dataclass
class Shop:
    """One Juanie server with its gateway, microshop registered with its backing services, and its source."""

    db: str
    server: Server
    source: Path
    backing: Backing
    gateway_port: int
    admin_port: int
    hook_secret: str

    def gateway(self, env: str, service: str, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.gateway_port}/{PROJECT}-{env}/{service}{path}"

    def get(self, path: str, **params: Any) -> Any:
        return self.server.ok("GET", path, params=params)

    def events(self, kind: str, limit: int = 200) -> list[dict[str, Any]]:
        return self.get("/api/events", project=PROJECT, kind=kind, limit=limit)["items"]

    def status(self, env: str) -> dict[str, Any]:
        return self.get(f"/api/projects/{PROJECT}/environments/{env}/status")

    def versions(self, env: str) -> set[str]:
        return {w["version"] for w in self.status(env)["workloads"]}

    def history(self, env: str) -> list[dict[str, Any]]:
        return self.get(f"/api/projects/{PROJECT}/gitops/log", env=env)["items"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    base = tmp_path_factory.mktemp(f"loop-{request.param}")
    gateway_port, admin_port = free_port(), free_port()
    env = {
        "JUANIE_ENGINE": "local",
        "JUANIE_GATEWAY_PORT": str(gateway_port),
        "JUANIE_GATEWAY_ADMIN_PORT": str(admin_port),
        "JUANIE_OBSERVE_INTERVAL": "1",
        "JUANIE_ALERT_EVAL_INTERVAL": "1",
        "JUANIE_ALERT_GROUP_WAIT": "1",
        "JUANIE_ALERT_GROUP_INTERVAL": "2",
        "JUANIE_OBSERVE_RULES_REFRESH": "2",
        "JUANIE_NOTIFY_ATTEMPTS": "2",
        **LOOPBACK_ALLOWED,  # the test's receiver listens on 127.0.0.1
    }
    if request.param == "postgresql":
        env["JUANIE_DATABASE_URL"] = request.getfixturevalue("postgres").fresh()
    backing = Backing.create()
    server = start_server(base / "data", env=env)
    try:
        source = source_repo(base / "demo")  # `juanie demo`'s own: examples/microshop, outside the data directory
        shape_source(source, backing)
        register_microshop(server, source, payment_key="sk_e2e_" + backing.name[-10:])
        # Pushes reach Juanie by webhook here; the poller, left at its minute, could race one and claim its commit.
        server.ok("PATCH", f"/api/projects/{PROJECT}", json={"poll_interval_seconds": 86400})
        for name, value in backing.secrets().items():
            server.ok("PUT", f"/api/projects/{PROJECT}/secrets/{name}", json={"value": value})
        hook = server.ok("POST", f"/api/projects/{PROJECT}/webhook")
        server.ok("POST", "/api/users", json={"username": MANAGER, "password": MANAGER_PASSWORD})
        server.ok("PUT", f"/api/projects/{PROJECT}/members", json={"user": MANAGER, "role": "maintainer"})
        yield Shop(request.param, server, source, backing, gateway_port, admin_port, hook["secret"])
    finally:
        left = stop_everything(server)
        backing.drop()
        assert not left, f"processes left behind: {left}"


@pytest.fixture(scope="module")
def server(shop: Shop) -> Server:
    """The e2e `new_page` fixture's server: the loop's own (so the browser may talk to it and nothing else)."""
    return shop.server


def _sign_in(new_page: Any, shop: Shop) -> Any:
    page, _log = new_page()
    page.goto(f"{shop.server.url}/login?next=/projects/{PROJECT}")
    page.get_by_label("Username").fill(MANAGER)
    page.get_by_role("textbox", name="Password").fill(MANAGER_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{shop.server.url}/projects/{PROJECT}")
    return page


def _kinds(shop: Shop, subject: str) -> list[str]:
    items = shop.get("/api/events", project=PROJECT, limit=500)["items"]
    return [e["kind"] for e in reversed(items) if e["subject"] == subject]


def _baseline(shop: Shop, page: Any) -> str:
    """`juanie demo up`: register-or-reuse, first pipeline, dev live; the board shows dev, staging and prod."""
    done = juanie(shop.server, shop.gateway_port, "demo", "up", "--data-dir", str(shop.server.data_dir),
                  "--demo-dir", str(shop.source.parent))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dev is live" in done.stdout
    first = shop.get(f"/api/projects/{PROJECT}/releases")["items"]
    assert len(first) == 1
    version = first[0]["version"]
    assert shop.versions("dev") == {version}
    page.goto(f"{shop.server.url}/projects/{PROJECT}")
    board = page.locator(".board")
    for env in ("dev", "staging", "prod"):
        expect(board.get_by_role("heading", name=env, exact=True)).to_be_visible()
        expect(board.locator(f'[data-env="{env}"]')).to_contain_text(f"{PROJECT}-{env}")
    expect(board.locator('[data-env="dev"] [data-env-release]')).to_have_text(version)
    screenshot(page, f"20-loop-{shop.db}-board-after-demo-up")
    return version


def _place_order(shop: Shop) -> tuple[dict[str, Any], dict[str, Any]]:
    """A customer, a product and a paid order, all through the gateway into dev."""
    with httpx.Client(timeout=20) as client:
        user = client.post(shop.gateway("dev", "user", "/users"), json={"email": "ada@example.com", "name": "Ada"})
        assert user.status_code == 201, user.text
        product = client.post(shop.gateway("dev", "product", "/products"), json={"name": "kettle",
                                                                                  "price_cents": 2599})
        assert product.status_code == 201, product.text
        read = client.get(shop.gateway("dev", "product", f"/products/{product.json()['id']}"))
        assert read.status_code == 200 and read.json()["name"] == "kettle"
        order = client.post(shop.gateway("dev", "order", "/orders"), json={
            "user_id": user.json()["id"], "currency": "EUR",
            "items": [{"product_id": product.json()["id"], "quantity": 2}]})
        assert order.status_code == 201, order.text
        assert order.json()["status"] == "paid" and order.json()["total_cents"] == 5198
        return product.json(), order.json()


def _assert_backing_services_were_used(shop: Shop) -> None:
    with httpx.Client(timeout=20) as client:
        assert client.get(shop.gateway("dev", "product")).json()["cache"] == "redis"
        assert client.get(shop.gateway("dev", "order")).json()["events"] == "enabled"
    product, order = _place_order(shop)
    rows = shop.backing.rows("SELECT id, status, total_cents, payment_id FROM orders WHERE id = %s", order["id"])
    assert rows == [{"id": order["id"], "status": "paid", "total_cents": 5198, "payment_id": order["payment_id"]}]
    assert shop.backing.rows("SELECT name FROM products WHERE id = %s", product["id"]) == [{"name": "kettle"}]
    assert f"{shop.backing.redis_prefix}product:{product['id']}" in shop.backing.redis_keys()
    events = wait_until(shop.backing.messages, timeout=20, message="the order event in the bound queue")
    assert [(m["routing_key"], m["event"], m["data"]["order_id"]) for m in events] == [
        ("order.created", "order.created", order["id"])]


def _push_to_dev(shop: Shop) -> tuple[int, str]:
    """A change on `develop`, and the webhook GitHub would deliver for its push (signed with the project's secret)."""
    main = git(shop.source, "rev-parse", "HEAD")
    git(shop.source, "checkout", "-q", "-b", "develop")
    (shop.source / "CHANGELOG.md").write_text("- checkout shows the order total\n")
    git(shop.source, "add", "-A")
    git(shop.source, "commit", "-qm", "docs: changelog for the checkout total")
    response = push(shop.server, shop.source, shop.hook_secret, "develop", before=main)
    assert response.status_code == 202, response.text
    return response.json()["run_id"], git(shop.source, "rev-parse", "HEAD")


def _deploy_approved(shop: Shop, env: str, version: str, reason: str) -> int:
    dep = shop.server.ok("POST", f"/api/projects/{PROJECT}/deploy", json={"env": env, "release": version,
                                                                          "reason": reason})
    approve_deployment(shop.server, dep, reason)  # prod's required approval: a second person (four eyes)
    return dep["id"]


def _dev_is_live(shop: Shop, run_id: int, sha: str) -> str:
    run = wait_run(shop.server, run_id)
    assert run["status"] == "succeeded", shop.get(f"/api/runs/{run_id}/logs")
    assert [s["stage"] for s in run["steps"]] == ["build", "test", "quality", "package"]
    assert run["trigger"] == "push" and run["branch"] == "develop" and run["target_env"] == "dev"
    assert run["commit"] == sha
    version = sha[:12]
    release = shop.get(f"/api/projects/{PROJECT}/releases/{version}")
    assert sorted(release["artifacts"]) == list(SERVICES)
    dep = wait_until(lambda: next(iter(shop.get(f"/api/projects/{PROJECT}/deployments", env="dev",
                                                   limit=1)["items"]), {}).get("release") == version
                     and shop.get(f"/api/projects/{PROJECT}/deployments", env="dev", limit=1)["items"][0],
                     timeout=30, interval=0.3, message="the automatic deploy to dev")
    assert dep["reason"] == f"auto-deploy of develop@{version}"
    done = final(shop.server, dep["id"])
    assert done["status"] == "success" and done["strategy"] == "rolling", done
    status = shop.status("dev")
    assert status["health"] == "Healthy"
    assert {w["version"] for w in status["workloads"]} == {version}
    assert all(w["health"] == "Healthy" and w["ready"] == w["desired"] for w in status["workloads"])
    with httpx.Client(timeout=20) as client:
        for service in SERVICES:
            answer = client.get(shop.gateway("dev", service))
            assert answer.status_code == 200 and answer.json()["service"] == service
            assert answer.headers["x-juanie-version"] == version
    events = list(reversed(shop.get("/api/events", project=PROJECT, limit=500)["items"]))  # oldest first
    pushed = [i for i, e in enumerate(events) if e["kind"] == "webhook.push" and e["data"]["after"] == version]
    lifecycle = [(i, e["kind"]) for i, e in enumerate(events) if e["subject"] == f"run/{PROJECT}/{run['number']}"
                 and e["kind"] in ("pipeline.queued", "pipeline.running", "pipeline.succeeded")]
    released = [i for i, e in enumerate(events) if e["kind"] == "release.created"
                and e["subject"] == f"release/{PROJECT}/{version}"]
    assert [k for _, k in lifecycle] == ["pipeline.queued", "pipeline.running", "pipeline.succeeded"], lifecycle
    assert len(pushed) == 1 and len(released) == 1
    assert pushed[0] < lifecycle[0][0] and lifecycle[-1][0] < released[0], events
    assert _kinds(shop, f"deployment/{dep['id']}")[:3] == ["deployment.created", "deployment.running",
                                                            "deployment.success"]
    history = shop.history("dev")
    assert [c["release"] for c in history[:2]] == [version, history[1]["release"]]
    assert history[0]["deployment"] == str(dep["id"])
    return version


def _staging_canary_approved_in_the_ui(shop: Shop, page: Any, version: str, previous: str) -> None:
    page.goto(f"{shop.server.url}/projects/{PROJECT}")
    promote = page.locator('[data-env="staging"] [data-promote]')
    promote.get_by_text("Promote from dev").click()
    expect(promote.locator("[data-preview]")).to_contain_text(version, timeout=LIVE_MS)
    promote.get_by_label("Reason").fill("the checkout total, verified in dev")
    promote.get_by_role("button", name="Promote to staging").click()
    expect(page).to_have_url(re.compile(rf"/projects/{PROJECT}/deployments/\d+$"))
    dep_id = int(page.url.rsplit("/", 1)[1])
    dep = shop.get(f"/api/deployments/{dep_id}")
    assert dep["kind"] == "promote" and dep["release"] == version and dep["status"] == "pending"
    assert dep["approval"]["status"] == "requested" and dep["approval"]["mode"] == "optional"
    expect(page.locator("[data-approval-status] .chip")).to_have_text("requested")
    screenshot(page, f"21-loop-{shop.db}-staging-waits-for-approval")
    page.evaluate("""() => {
        const text = document.querySelector('[data-w-canary-text]');
        window.__weights = [text.textContent.trim()];
        new MutationObserver(() => window.__weights.push(text.textContent.trim()))
            .observe(text, {childList: true, characterData: true, subtree: true});
    }""")
    page.once("dialog", lambda dialog: dialog.accept("staging canary: watched it live"))
    page.locator('[data-control="approve"]').click()
    expect(page.locator("[data-approval-status] .chip")).to_have_text("approved", timeout=LIVE_MS)
    expect(page.locator("[data-w-canary-text]")).to_have_text("20%", timeout=120_000)
    screenshot(page, f"22-loop-{shop.db}-staging-canary-at-20")
    expect(page.locator("[data-dep-status] .chip")).to_have_text("success", timeout=120_000)
    # The page polls every 2 s, so a short step may pass unseen; the first step and a later one must show.
    shown = [int(w[:-1]) for w in page.evaluate("window.__weights") if re.fullmatch(r"\d+%", w)]
    moving = [w for w in shown if w]
    assert 20 in moving and len(set(moving)) >= 2 and moving == sorted(moving), shown
    expect(page.locator(".verdict-sentence").first).to_be_visible()
    done = shop.get(f"/api/deployments/{dep_id}")
    assert done["status"] == "success" and done["strategy"] == "canary", done
    assert done["approval"]["status"] == "approved" and done["approval"]["decided_by"] == MANAGER
    assert done["approval"]["reason"] == "staging canary: watched it live"
    assert any(v["outcome"] == "pass" for v in done["verdicts"])
    approved = [e for e in shop.events("approval.approved") if e["subject"] == f"deployment/{dep_id}"]
    assert approved and approved[0]["actor"] == MANAGER
    assert _kinds(shop, f"deployment/{dep_id}")[:5] == ["deployment.created", "approval.requested",
                                                        "approval.approved", "deployment.running",
                                                        "deployment.success"]
    assert shop.versions("staging") == {version}
    history = shop.history("staging")
    assert [c["release"] for c in history[:2]] == [version, previous]
    assert history[0]["deployment"] == str(dep_id)


def _prod_canary(shop: Shop, version: str, previous: str) -> None:
    preview = shop.get(f"/api/projects/{PROJECT}/promote/preview", **{"from": "staging", "to": "prod"})
    assert preview["release"] == version and preview["current"] == previous and version in preview["diff"]
    dep = shop.server.ok("POST", f"/api/projects/{PROJECT}/promote", json={"from": "staging", "to": "prod"})
    assert dep["release"] == version and dep["approval"]["mode"] == "required"
    held = wait_until(lambda: (d := shop.get(f"/api/deployments/{dep['id']}"))["status"] == "pending" and d,
                      timeout=10, message="prod held at its gate")
    assert held["approval"]["status"] == "requested"
    approve_deployment(shop.server, dep, "staging was clean")  # not the admin who promoted it (four eyes)
    weights: set[int] = set()

    def finished() -> dict[str, Any] | None:
        d = shop.get(f"/api/deployments/{dep['id']}")
        if d.get("weights"):
            weights.add(d["weights"]["canary"])
        return d if d["status"] in ("success", "rolled_back", "cancelled") else None

    done = wait_until(finished, timeout=180, interval=0.3, message="the prod canary")
    assert done["status"] == "success" and done["strategy"] == "canary", done
    assert 50 in weights, weights
    for env in ("dev", "staging", "prod"):
        assert shop.versions(env) == {version}, env
    assert [c["release"] for c in shop.history("prod")[:2]] == [version, previous]


def _bad_release(shop: Shop) -> int:
    """The bug `juanie demo bad-release` commits (payment fails one request in five), on a release branch, built
    through the API as that command builds it; release/* maps to staging, which never deploys by itself."""
    git(shop.source, "checkout", "-q", "-b", "release/provider-client")
    payment = shop.source / "microshop" / "payment.py"
    payment.write_text(payment.read_text().replace("\nFAILURE_RATE = 0.0\n", "\nFAILURE_RATE = 0.2\n"))
    git(shop.source, "commit", "-qam", "payment: switch to the new provider client")
    run = shop.server.ok("POST", f"/api/projects/{PROJECT}/runs", json={"ref": "release/provider-client"})
    assert run["target_env"] == "staging", run
    return run["id"]


def _bad_canary_rolled_back(shop: Shop, page: Any, run_id: int, good: str) -> tuple[str, float, float]:
    run = wait_run(shop.server, run_id)
    assert run["status"] == "succeeded", shop.get(f"/api/runs/{run_id}/logs")
    bad = run["commit"][:12]
    started = time.monotonic()
    dep_id = _deploy_approved(shop, "staging", bad, "the new payment provider client")
    page.goto(f"{shop.server.url}/projects/{PROJECT}/deployments/{dep_id}")
    expect(page.locator("[data-dep-status] .chip")).to_have_text("rolled back", timeout=120_000)
    done = final(shop.server, dep_id)
    ended = time.monotonic()
    assert done["status"] == "rolled_back" and done["strategy"] == "canary", done
    failed = [e for e in shop.events("deployment.failed") if e["subject"] == f"deployment/{dep_id}"]
    reason = failed[0]["data"]["verdict"]
    assert done["verdicts"][-1]["outcome"] == "fail" and reason.endswith("rolling back"), done["verdicts"]
    expect(page.locator(".verdict-sentence").filter(has_text=reason).first).to_be_visible(timeout=LIVE_MS)
    expect(page.locator("[data-w-canary-text]")).to_have_text("0%")
    screenshot(page, f"23-loop-{shop.db}-bad-release-rolled-back")
    assert done["weights"] == {"stable": 100, "canary": 0}
    status = shop.status("staging")
    assert {w["version"] for w in status["workloads"]} == {good}
    assert not any(w["name"].endswith("-canary") for w in status["workloads"])
    history = shop.history("staging")
    assert history[0]["subject"].startswith(f"rollback {PROJECT}/staging") and history[1]["release"] == bad
    assert history[0]["reason"] == reason
    assert _kinds(shop, f"deployment/{dep_id}")[-2:] == ["deployment.failed", "deployment.rolled_back"]
    return bad, started, ended


def _alert_reaches_the_receiver(shop: Shop, receiver: Any) -> tuple[float, float]:
    def firing() -> list[dict[str, Any]]:
        return [b for b in receiver.bodies() if b["status"] == "firing"
                and b["groupLabels"] == {"alertname": "HighErrorRate", "env": f"{PROJECT}-dev", "service": "product"}]

    started = time.monotonic()
    inject_fault(shop.server, shop.admin_port, f"{PROJECT}-dev/product", 50)
    try:
        try:
            notes = wait_until(firing, timeout=90, interval=0.2, message="the firing notification")
        except AssertionError as exc:
            alerts = [(a["alertname"], a["env"], a["service"], a["state"])
                      for a in shop.get("/api/alerts", project=PROJECT)["items"]]
            got = [(b["status"], b["groupLabels"]) for b in receiver.bodies()]
            raise AssertionError(f"{exc}; alerts {alerts}; the receiver got {got}") from None
    finally:
        inject_fault(shop.server, shop.admin_port, f"{PROJECT}-dev/product", 0)
        ended = time.monotonic()
    labels = notes[0]["alerts"][0]["labels"]
    assert labels["project"] == PROJECT and labels["severity"] and notes[0]["alerts"][0]["status"] == "firing"
    moves = [(e["data"]["from"], e["data"]["to"]) for e in reversed(shop.events("alert.*"))
             if e["kind"] != "alert.received" and e["data"]["labels"].get("alertname") == "HighErrorRate"
             and e["data"]["labels"].get("service") == "product"]
    assert moves[:2] == [("inactive", "pending"), ("pending", "firing")], moves
    # Nothing else fired through the whole loop: no rollout, canary or rollback raised a false alarm.
    groups = [b["groupLabels"] for b in receiver.bodies()]
    assert groups == [notes[0]["groupLabels"]] * len(groups), groups
    sent = [e for e in shop.events("notification.sent") if e["data"]["channel"] == "oncall"]
    assert sent and sent[0]["data"]["status"] == "firing" and sent[0]["data"]["target"].startswith("http://127.0.0.1")
    return started, ended


def test_the_whole_loop_from_push_to_prod_a_rollback_and_an_alert(shop: Shop, new_page: Any,
                                                                  http_receiver: Any) -> None:  # noqa: F811
    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()
        print(f"[{shop.db}] {name}: {timings[name]} s")

    shop.server.ok("PUT", f"/api/projects/{PROJECT}/channels/oncall", json={"kind": "webhook",
                                                                          "url": http_receiver.url})
    page = _sign_in(new_page, shop)
    first = _baseline(shop, page)
    lap("demo up")
    dev_load = Load(shop.gateway("dev", "product"), rps=10, keep_answers=True)
    with dev_load:
        run_id, sha = _push_to_dev(shop)
        bad_run = _bad_release(shop)  # built beside the push's run, ready when step 4 needs it
        baselines = [_deploy_approved(shop, env, first, "baseline") for env in ("staging", "prod")]
        for dep_id in baselines:
            done = final(shop.server, dep_id)
            assert done["status"] == "success" and done["strategy"] == "rolling", done
        staging_load = Load(shop.gateway("staging", "payment"), rps=100, keep_answers=True)
        prod_load = Load(shop.gateway("prod", "payment"), rps=60, keep_answers=True)
        with staging_load, prod_load:
            wait_until(lambda: len(staging_load.answers) > 40 and len(prod_load.answers) > 40, timeout=30,
                       message="load on staging and prod")
            version = _dev_is_live(shop, run_id, sha)
            lap("push to dev live")
            _assert_backing_services_were_used(shop)
            lap("backing services")
            _staging_canary_approved_in_the_ui(shop, page, version, first)
            lap("staging canary")
            _prod_canary(shop, version, first)
            lap("prod canary")
            bad, bad_start, bad_end = _bad_canary_rolled_back(shop, page, bad_run, version)
            lap("bad release")
            fault_start, fault_end = _alert_reaches_the_receiver(shop, http_receiver)
            lap("alert")
    print(f"\n[{shop.db}] seconds per step: {timings}")
    for load in (dev_load, staging_load, prod_load):
        print(f"[{shop.db}] {load.url}: {dict(load.outcomes)}")
    bad_canary = Window(bad_start, bad_end, lambda a: a.outcome == "500" and a.version == bad)
    injected = Window(fault_start, fault_end, lambda a: a.outcome == "503" and a.version == "")
    assert unexpected_failures(dev_load.answers, [injected]) == []
    assert unexpected_failures(staging_load.answers, [bad_canary]) == []
    assert unexpected_failures(prod_load.answers) == []
    # Both windows really had failures in them: the bug and the fault were real, not absorbed somewhere.
    assert any(bad_canary.allows(a) for a in staging_load.answers)
    assert any(injected.allows(a) for a in dev_load.answers)
    assert {a.version for a in prod_load.answers if a.outcome == "200"} == {first, version}
