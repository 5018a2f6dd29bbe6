"""Observe journeys in real headless Chromium against a real Juanie server running microshop in dev on the local
engine: real processes behind the real gateway, real load through it, a fault injected through the gateway's
admin API to make an alert fire, logs captured from the processes, and a real HTTP receiver on 127.0.0.1.

One setup for the module (under twenty seconds here); every journey reads the same live data. The `new_page` fixture
fails a journey if the browser asked anything of another host.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from juanie.render import ReleaseRef, render_manifests
from juanie.spec import load_spec
from tests.e2e.conftest import Server as UIServer
from tests.e2e.ui_helpers import screenshot
from tests.integration.observe_server.procs import kill_under
from tests.load_support import Load
from tests.observe_support import (
    LOOPBACK_ALLOWED,
    add_fault_rule,
    http_receiver,  # noqa: F401  (fixture)
    inject_fault,
)
from tests.server_support import Server, microshop_source, start_server
from tests.support import free_port, wait_until

expect = pytest.importorskip("playwright.sync_api").expect
pytestmark = pytest.mark.timeout(300)
PROJECT, NAMESPACE = "microshop", "microshop-dev"
LIVE_MS = 30_000


@dataclass
class Shop:
    server: Server
    gateway: str
    admin_port: int


def _dev_manifests(source: Path) -> list[dict[str, Any]]:
    """microshop's dev environment as `juanie render` writes it, running from the checkout itself."""
    spec = load_spec(source)
    objects = render_manifests(spec, "dev", ReleaseRef("v1", {name: f"file://{source}" for name in spec.services}))
    objects = [o for o in objects if o["kind"] in ("Deployment", "Service", "HTTPRoute", "ConfigMap")]
    for o in objects:
        for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            c.pop("securityContext", None)
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "payment-secrets", "namespace": NAMESPACE},
              "stringData": {"PAYMENT_API_KEY": "test-key"}}  # fmt: skip
    return [*objects, secret]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    base = tmp_path_factory.mktemp("observe-ui")
    source = microshop_source(base / "source")
    add_fault_rule(source, for_="3s")  # 3 s pending: the journey stays short
    gateway, admin = free_port(), free_port()
    env = {
        "JUANIE_ENGINE": "local",
        "JUANIE_GATEWAY_PORT": str(gateway),
        "JUANIE_GATEWAY_ADMIN_PORT": str(admin),
        "JUANIE_OBSERVE_INTERVAL": "1",
        "JUANIE_ALERT_EVAL_INTERVAL": "1",
        "JUANIE_ALERT_GROUP_WAIT": "1",
        "JUANIE_OBSERVE_RULES_REFRESH": "2",
        "JUANIE_NOTIFY_ATTEMPTS": "1",
        "JUANIE_LOG_LEVEL": "WARNING",
        **LOOPBACK_ALLOWED,  # the test's receiver listens on 127.0.0.1
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }
    server = start_server(base / "data", env=env)
    try:
        server.ok("POST", "/api/projects", json={"name": PROJECT, "repo_url": str(source)})
        applied = server.api(
            "POST", "/api/engine/apply", json={"namespace": NAMESPACE, "manifests": _dev_manifests(source)}
        )
        assert applied.status_code == 200, applied.text

        def ready() -> bool:
            status = server.ok("GET", f"/api/engine/namespaces/{NAMESPACE}")
            return bool(status["workloads"]) and all(w["ready"] >= 1 for w in status["workloads"])

        wait_until(ready, timeout=120, interval=0.5, message="microshop dev to be ready")
        with Load(f"http://127.0.0.1:{gateway}/{NAMESPACE}/product/", rps=15, max_seconds=280):
            yield Shop(server, f"127.0.0.1:{gateway}", admin)
    finally:
        if server.proc.poll() is None:
            try:
                server.api("POST", "/api/system/down", json={"stop_data_plane": True})
                server.proc.wait(60)
            except Exception:  # a server that will not stop is killed below with everything else it started
                server.stop()
        kill_under(base)


@pytest.fixture(scope="module")
def server(shop: Shop) -> UIServer:
    """The UI fixtures (`new_page`, `admin_cookies`) drive this engine-backed server instead of the plain one."""
    s = shop.server
    return UIServer(s.url, s.port, s.token, s.data_dir)


def _viewer(server: UIServer) -> tuple[str, str]:
    name, password = f"viewer-{uuid.uuid4().hex[:6]}", "viewer-password-1"
    server.create_user(name, password)
    with server.api() as api:
        response = api.put(f"/api/projects/{PROJECT}/members", json={"user": name, "role": "viewer"})
        assert response.status_code == 200, response.text
    return name, password


def _expect_range(page: Any, seconds: int) -> None:
    # Read in one go: the region may be swapped for a fresher one between two separate reads.
    start, end, label = page.evaluate("""() => {
        const charts = document.querySelector('[data-refresh="charts"]');
        const label = charts.querySelector('[data-chart="rate"] .chart-x');
        return [Number(charts.dataset.rangeStart), Number(charts.dataset.rangeEnd), label && label.textContent];
    }""")
    assert end - start == seconds, (start, end)
    # The axis spans the chosen range, not just the data: its first label is the range's start.
    assert label == datetime.fromtimestamp(start, UTC).strftime("%H:%M"), (label, start)


def test_metrics_page_draws_live_charts_and_the_range_picker_changes_the_range(server, new_page, admin_cookies):
    page, _log = new_page(admin_cookies())
    page.goto(f"{server.url}/projects/{PROJECT}")
    page.locator("main").get_by_role("link", name="Observe").click()
    expect(page).to_have_url(re.compile(rf"/projects/{PROJECT}/metrics$"))
    expect(page.get_by_role("link", name="1h")).to_have_attribute("aria-current", "true")
    charts = page.locator('[data-refresh="charts"]')
    # The gateway and the processes are measured every second; the page swaps in fresh charts by itself.
    expect(charts).to_have_attribute("data-has-data", "1", timeout=LIVE_MS)
    _expect_range(page, 3600)

    page.get_by_role("link", name="6h").click()
    expect(page).to_have_url(re.compile(r"range=6h"))
    expect(page.get_by_role("link", name="6h")).to_have_attribute("aria-current", "true")
    _expect_range(page, 6 * 3600)

    page.get_by_role("link", name="15m").click()
    expect(page).to_have_url(re.compile(r"range=15m"))
    _expect_range(page, 900)
    for chart in ("rate", "errors", "latency", "cpu", "memory"):
        expect(page.locator(f'[data-chart="{chart}"] polyline.chart-line').first).to_be_attached(timeout=LIVE_MS)
    names = page.locator('[data-chart="rate"] polyline.chart-line title').all_text_contents()
    assert "product" in names, names
    assert page.locator('[data-chart="latency"] .chart-legend').all_text_contents() == ["p50", "p95", "p99"]
    assert page.locator('[data-chart="memory"] polyline.chart-line').count() >= 2  # one line per service
    first_end = charts.get_attribute("data-range-end")
    expect(charts).not_to_have_attribute("data-range-end", first_end, timeout=LIVE_MS)  # refreshed in place
    screenshot(page, "20-observe-metrics")

    page.get_by_label("Service").select_option("product")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"service=product"))
    expect(page).to_have_url(re.compile(r"range=15m"))
    expect(page.locator('[data-chart="rate"] polyline.chart-line')).to_have_count(1)
    expect(page.locator('[data-chart="memory"] polyline.chart-line')).to_have_count(1)


def test_a_firing_alert_is_silenced_from_the_alerts_page(server, shop, new_page, admin_cookies):
    page, _log = new_page(admin_cookies())
    page.goto(f"{server.url}/alerts")
    expect(page.get_by_role("link", name="Observe", exact=True)).to_have_attribute("aria-current", "page")
    expect(page.get_by_text("Nothing is firing.").or_(page.locator("tr[data-alert]")).first).to_be_visible()
    page.goto(f"{server.url}/projects/{PROJECT}/alerts")
    inject_fault(shop.server, shop.admin_port, f"{NAMESPACE}/product", 100)
    try:
        row = page.locator('tr[data-alert="HighErrorRate"][data-alert-service="product"]')
        # The page re-reads itself: the alert appears, pending then firing, without a reload.
        expect(row).to_have_attribute("data-shown-state", "firing", timeout=2 * LIVE_MS)
        expect(row.locator(".sev")).to_have_text("P1")
        expect(row).to_contain_text(f"env={NAMESPACE}")
        expect(page.locator('[data-state-tab="firing"] .tab-count')).to_have_text(re.compile(r"^[1-9]"))
        screenshot(page, "21-observe-alert-firing")

        row.get_by_role("link", name="Silence HighErrorRate").click()
        expect(page).to_have_url(re.compile(rf"/projects/{PROJECT}/silences\?matchers="))
        matchers = page.get_by_label("Matchers")
        expect(matchers).to_have_value(f'alertname="HighErrorRate",env="{NAMESPACE}",service="product"')
        page.get_by_label("Comment").fill("product is being fixed")
        page.get_by_role("button", name="Create silence").click()
        active = page.locator('[data-silences="active"]')
        expect(active).to_contain_text("product is being fixed")
        expect(active).to_contain_text('service="product"')

        page.get_by_role("link", name="Alerts", exact=True).click()
        expect(row).to_have_attribute("data-shown-state", "silenced", timeout=LIVE_MS)
        expect(row.get_by_role("link", name="See silence")).to_be_visible()
        page.locator('[data-state-tab="firing"]').click()
        expect(row).to_have_count(0)
        page.locator('[data-state-tab="silenced"]').click()
        expect(row).to_have_count(1)
        screenshot(page, "22-observe-alert-silenced")
    finally:
        inject_fault(shop.server, shop.admin_port, f"{NAMESPACE}/product", 0)


def test_create_a_silence_with_an_inline_error_then_expire_it_and_a_viewer_gets_no_controls(
    server, new_page, admin_cookies
):
    page, _log = new_page(admin_cookies())
    page.goto(f"{server.url}/projects/{PROJECT}/silences")
    page.get_by_label("Matchers").fill('service="payment",env')
    page.get_by_label("Comment").fill("maintenance of the payment provider")
    page.get_by_label("Duration").select_option("1h")
    page.get_by_role("button", name="Create silence").click()
    error = page.locator('[data-error-for="matchers"]')
    expect(error).to_be_visible()
    expect(error).to_contain_text("invalid matcher 'env'")
    expect(page.get_by_label("Matchers")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Matchers")).to_be_focused()
    screenshot(page, "23-observe-silence-error")

    # A quoted value may hold a comma and a space: the form splits matchers only outside quotes.
    page.get_by_label("Matchers").fill('service="payment", env=~"microshop-dev|shop, staging"')
    page.get_by_role("button", name="Create silence").click()
    row = page.locator('[data-silences="active"] tr', has_text="maintenance of the payment provider")
    expect(row).to_have_count(1)
    expect(row.locator("code")).to_have_text(['service="payment"', 'env=~"microshop-dev|shop, staging"'])
    expect(row).to_contain_text(re.compile(r"in (59|60) minutes|in 1 hour"))
    silence_id = row.get_attribute("data-silence-id")

    viewer, password = _viewer(server)
    other, _vlog = new_page(server.session_cookies(viewer, password))
    other.goto(f"{server.url}/projects/{PROJECT}/silences")
    expect(other.locator(f'tr[data-silence-id="{silence_id}"]')).to_be_visible()
    expect(other.get_by_role("button", name="Create silence")).to_have_count(0)
    expect(other.get_by_role("button", name="Expire")).to_have_count(0)
    expect(other.get_by_text("needs the developer role")).to_be_visible()
    refused = other.evaluate(
        """async (id) => (await window.Juanie.api("DELETE", "/api/silences/" + id)).status""", silence_id
    )
    assert refused == 403

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Expire").click()
    expired = page.locator(f'[data-silences="expired"] tr[data-silence-id="{silence_id}"]')
    expect(expired).to_be_visible()
    expect(expired).to_contain_text(re.compile(r"expired by root-e2e"))
    screenshot(page, "24-observe-silences")


def test_log_search_finds_a_line_and_follow_shows_a_new_one(server, shop, new_page, admin_cookies):
    marker = f"probe-{uuid.uuid4().hex[:8]}"
    route = f"http://{shop.gateway}/{NAMESPACE}/user/{marker}"
    assert httpx.get(route, timeout=10).status_code == 404
    page, _log = new_page(admin_cookies())
    page.goto(f"{server.url}/projects/{PROJECT}/logs")

    page.get_by_label("Text").fill(marker)
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(rf"q={marker}"))

    def found_once() -> bool:
        if page.locator(".log-row").count() == 1:
            return True
        page.reload()  # the engine stores lines within a second or two of their being written
        return False

    wait_until(found_once, timeout=30, interval=0.5, message="the request's log line to be searchable")
    found = page.locator(".log-row")
    expect(found.locator(".log-service")).to_have_text("user")
    expect(found.locator(".log-msg")).to_contain_text(f"/{marker} 404")
    expect(page.locator("[data-log-count]")).to_have_text("1")

    follow = page.get_by_role("button", name="Follow")
    follow.click()
    expect(page.get_by_role("button", name="Stop following")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("[data-live-status]")).to_have_text("Live", timeout=LIVE_MS)

    def new_line_arrives() -> bool:
        httpx.get(route + "-again", timeout=10)  # the tail follows `q`: this path still contains the marker
        return page.locator(".log-row").count() >= 2

    wait_until(new_line_arrives, timeout=30, interval=1.0, message="a followed line to appear")
    expect(page.locator(".log-row.is-new").first).to_contain_text(f"/{marker}-again 404")
    expect(page.locator("[data-log-count]")).not_to_have_text("1")
    screenshot(page, "25-observe-logs-follow")


def test_send_test_through_a_channel_to_a_real_receiver(server, new_page, admin_cookies, http_receiver):  # noqa: F811
    with server.api() as api:
        body = {"kind": "webhook", "url": http_receiver.url}
        assert api.put(f"/api/projects/{PROJECT}/channels/oncall-e2e", json=body).status_code == 200
    page, _log = new_page(admin_cookies())
    page.goto(f"{server.url}/settings/notifications")
    row = page.locator(f'tr[data-channel="{PROJECT}/oncall-e2e"]')
    expect(row).to_contain_text("webhook")
    expect(row).to_contain_text("127.0.0.1")
    row.get_by_role("button", name="Send test").click()
    expect(row.locator(".channel-result")).to_have_text("Delivered: the receiver answered 200 (1 attempt(s)).")
    expect(row.locator(".channel-result")).to_have_class(re.compile(r"\bis-ok\b"))
    test_bodies = [b for b in http_receiver.bodies() if b["groupLabels"].get("alertname") == "JuanieTestNotification"]
    assert len(test_bodies) == 1, http_receiver.bodies()
    assert test_bodies[0]["alerts"][0]["labels"]["project"] == PROJECT
    screenshot(page, "26-settings-channel-test")


def test_observe_pages_fit_a_phone_and_read_in_chinese(server, new_page, admin_cookies):
    page, _log = new_page(admin_cookies(), width=390, height=844)
    for path in ("metrics", "alerts", "silences", "logs"):
        page.goto(f"{server.url}/projects/{PROJECT}/{path}")
        overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{path} scrolls sideways by {overflow}px on a phone"
    screenshot(page, "27-observe-logs-phone")
    zh, _zlog = new_page(admin_cookies(), locale="zh-CN")
    zh.goto(f"{server.url}/projects/{PROJECT}/metrics")
    expect(zh.locator("h1")).to_have_text("指标")
    expect(zh.get_by_role("link", name="静默")).to_be_visible()
