"""Observe live in a real server with real processes: microshop in dev behind the gateway, a fault injected through
the gateway, HighErrorRate pending → firing → resolved, one grouped Alertmanager-format notification to a real HTTP
receiver, silences, a real SMTP server, and the same rules (exported by `juanie render`) firing in a real
Prometheus whose Alertmanager posts back into Juanie."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from juanie.render import ReleaseRef, render_manifests, render_tree
from juanie.spec import load_spec
from tests.integration.observe_server.procs import kill_under, leftovers
from tests.observe_support import LOOPBACK_ALLOWED, add_fault_rule, inject_fault
from tests.server_support import Server, microshop_source, start_server
from tests.support import free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
PROMETHEUS, ALERTMANAGER = shutil.which("prometheus"), shutil.which("prometheus-alertmanager")
ROUTE = "microshop-dev/product"


@dataclass
class Shop:
    server: Server
    source: Path
    gateway: str
    admin_port: int
    load: Load
    base: Path
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def fault(self, abort_percent: float) -> None:
        inject_fault(self.server, self.admin_port, ROUTE, abort_percent)

    def events(self, kind: str) -> list[dict[str, Any]]:
        return self.server.ok("GET", "/api/events", params={"project": "microshop", "kind": kind, "limit": 500})[
            "items"
        ]


class Load:
    """A bounded request loop through the gateway (at most `max_seconds`, ~25 requests a second)."""

    def __init__(self, url: str, max_seconds: float = 420.0) -> None:
        self.url, self.max_seconds = url, max_seconds
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(timeout=5) as client:
            while not self.stop.wait(0.04) and time.monotonic() < deadline:
                try:
                    client.get(self.url)
                    self.sent += 1
                except httpx.HTTPError:
                    pass


def _manifests(spec: Any, source: Path) -> list[dict[str, Any]]:
    images = {name: f"file://{source}" for name in spec.services}
    objects = render_manifests(spec, "dev", ReleaseRef("v1", images))
    objects = [o for o in objects if o["kind"] in ("Deployment", "Service", "HTTPRoute", "ConfigMap")]
    for o in objects:  # the release directory is the checkout itself; it is read-only to nobody here
        for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            c.pop("securityContext", None)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "payment-secrets", "namespace": "microshop-dev"},
        "stringData": {"PAYMENT_API_KEY": "test-key"},
    }
    return [*objects, secret]


def _start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, receiver: Any) -> Iterator[Shop]:
    base = tmp_path_factory.mktemp("observe")
    source = microshop_source(base / "source")
    add_fault_rule(source, for_="4s")
    gateway, admin = free_port(), free_port()
    env = {
        "JUANIE_ENGINE": "local",
        "JUANIE_GATEWAY_PORT": str(gateway),
        "JUANIE_GATEWAY_ADMIN_PORT": str(admin),
        "JUANIE_OBSERVE_INTERVAL": "1",
        "JUANIE_ALERT_EVAL_INTERVAL": "1",
        "JUANIE_ALERT_GROUP_WAIT": "1",
        "JUANIE_ALERT_GROUP_INTERVAL": "2",
        "JUANIE_OBSERVE_RULES_REFRESH": "2",
        "JUANIE_NOTIFY_ATTEMPTS": "2",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        **LOOPBACK_ALLOWED,  # the receiver and the SMTP server listen on 127.0.0.1
    }
    server = start_server(base / "data", env=env)
    load = Load(f"http://127.0.0.1:{gateway}/microshop-dev/product/")
    shop = Shop(server, source, f"127.0.0.1:{gateway}", admin, load, base)
    try:
        server.ok("POST", "/api/projects", json={"name": "microshop", "repo_url": str(source)})
        server.ok("PUT", "/api/projects/microshop/channels/oncall", json={"kind": "webhook", "url": receiver.url})
        spec = load_spec(source)
        applied = server.api(
            "POST", "/api/engine/apply", json={"namespace": "microshop-dev", "manifests": _manifests(spec, source)}
        )
        assert applied.status_code == 200, applied.text

        def all_ready() -> bool:
            status = server.ok("GET", "/api/engine/namespaces/microshop-dev")
            return bool(status["workloads"]) and all(w["ready"] >= 1 for w in status["workloads"])

        wait_until(all_ready, timeout=120, interval=0.5, message="microshop dev to be ready")
        load.thread.start()
        yield shop
    finally:
        load.stop.set()
        if load.thread.is_alive():
            load.thread.join(timeout=10)
        for proc in shop.extra:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if server.proc.poll() is None:
            server.api("POST", "/api/system/down", json={"stop_data_plane": True})
            try:
                server.proc.wait(60)
            except subprocess.TimeoutExpired:
                server.stop()
        kill_under(base)
        assert leftovers(base) == [], "processes of the test's data directory are still running"


def _notifications(receiver: Any, status: str) -> list[dict[str, Any]]:
    return [
        b
        for b in receiver.bodies()
        if b.get("groupLabels", {}).get("alertname") == "HighErrorRate"
        and b["groupLabels"].get("service") == "product"
        and b["status"] == status
    ]


def _alerts(shop: Shop, state: str) -> list[dict[str, Any]]:
    items = shop.server.ok(
        "GET",
        "/api/alerts",
        params={"project": "microshop", "state": state, "alertname": "HighErrorRate", "service": "product"},
    )["items"]
    return items


def test_smtp_channel_delivers_a_test_message_to_a_real_smtp_server(shop: Shop, smtp_server: Any) -> None:
    body = {
        "kind": "email",
        "host": smtp_server.host,
        "port": smtp_server.port,
        "sender": "juanie@example.com",
        "recipients": ["oncall@example.com"],
        "password": "smtp-pass-9Xq",
    }
    shop.server.ok("PUT", "/api/projects/microshop/channels/mail", json=body)
    listed = shop.server.api("GET", "/api/projects/microshop/channels")
    assert "smtp-pass-9Xq" not in listed.text
    result = shop.server.ok("POST", "/api/projects/microshop/channels/mail/test")
    assert result["ok"] is True, result
    message = wait_until(lambda: smtp_server.messages, timeout=30, message="the SMTP server to get a message")[0]
    assert message.rcpt_tos == ["oncall@example.com"]
    assert b"JuanieTestNotification" in message.content
    sent = [e for e in shop.events("notification.sent") if e["data"]["channel"] == "mail"]
    assert sent and sent[0]["data"]["test"] is True and sent[0]["data"]["target"].startswith("smtp://")
    shop.server.ok("DELETE", "/api/projects/microshop/channels/mail")


def test_a_silenced_fault_fires_but_notifies_nobody(shop: Shop, receiver: Any) -> None:
    silence = shop.server.ok(
        "POST",
        "/api/silences",
        json={
            "project": "microshop",
            "matchers": ["alertname=HighErrorRate", "service=product"],
            "duration": "10m",
            "comment": "planned chaos test",
        },
    )
    assert silence["status"] == "active" and silence["created_by"] == "admin"
    shop.fault(50)
    try:
        wait_until(lambda: _alerts(shop, "firing"), timeout=90, interval=0.5, message="HighErrorRate to fire")
    finally:
        shop.fault(0)
    wait_until(lambda: not _alerts(shop, "firing,pending"), timeout=90, interval=0.5, message="the alert to resolve")
    assert _notifications(receiver, "firing") == [] and _notifications(receiver, "resolved") == []
    expired = shop.server.ok("DELETE", f"/api/silences/{silence['id']}")
    assert expired["status"] == "expired"
    assert shop.server.ok("GET", "/api/silences", params={"project": "microshop"})["items"] == []


def test_fault_makes_high_error_rate_pend_then_fire_and_notify_once_then_resolve(shop: Shop, receiver: Any) -> None:
    start_events = len(shop.events("alert.pending"))
    shop.fault(50)
    try:
        wait_until(lambda: _alerts(shop, "pending"), timeout=90, interval=0.2, message="HighErrorRate pending")
        firing = wait_until(
            lambda: _notifications(receiver, "firing"), timeout=90, interval=0.2, message="a firing notification"
        )
    finally:
        shop.fault(0)
    note = firing[0]
    assert note["version"] == "4" and note["receiver"] == "project"
    assert note["groupLabels"] == {"alertname": "HighErrorRate", "env": "microshop-dev", "service": "product"}
    labels = note["alerts"][0]["labels"]
    assert labels["severity"] == "P1" and labels["project"] == "microshop" and labels["team"] == "shop-platform"
    assert note["alerts"][0]["status"] == "firing" and note["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    wait_until(lambda: _notifications(receiver, "resolved"), timeout=90, interval=0.5, message="resolved message")
    assert len(_notifications(receiver, "firing")) == 1
    resolved = _notifications(receiver, "resolved")[0]
    assert resolved["alerts"][0]["status"] == "resolved" and resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    kinds = [
        (e["data"]["from"], e["data"]["to"])
        for e in reversed(shop.events("alert.*"))
        if e["kind"] != "alert.received" and e["data"]["labels"].get("service") == "product"
    ][-3:]
    # The silenced round before left this label set resolved, so it comes back from there.
    assert kinds[0] in (("inactive", "pending"), ("resolved", "pending"))
    assert kinds[1:] == [("pending", "firing"), ("firing", "resolved")]
    assert len(shop.events("alert.pending")) > start_events
    deliveries = [e for e in shop.events("notification.sent") if e["data"]["channel"] == "oncall"]
    assert {d["data"]["status"] for d in deliveries} >= {"firing", "resolved"}
    assert all(d["data"]["target"].startswith("http://127.0.0.1") for d in deliveries)


def test_metric_queries_answer_like_prometheus(shop: Shop) -> None:
    now = time.time()
    data = shop.server.ok(
        "GET",
        "/api/metrics/query_range",
        params={
            "project": "microshop",
            "query": 'sum by (service) (rate(juanie_gateway_requests_total{env="microshop-dev"}[10s]))',
            "start": now - 60,
            "end": now,
            "step": "5s",
        },
    )["data"]
    assert data["resultType"] == "matrix"
    product = [s for s in data["result"] if s["metric"] == {"service": "product"}]
    assert product and max(float(v) for _, v in product[0]["values"]) > 1
    up = shop.server.ok("GET", "/api/metrics/query", params={"project": "microshop", "query": 'up{job="microshop"}'})
    services = {r["metric"]["service"] for r in up["data"]["result"] if r["value"][1] == "1"}
    assert {"user", "product", "order", "payment"} <= services
    bad = shop.server.api("GET", "/api/metrics/query", params={"project": "microshop", "query": "sum(("})
    assert bad.status_code == 422 and "position" in bad.json()["error"]["message"]


def test_logs_are_searchable_and_log_rules_fire(shop: Shop) -> None:
    def product_lines() -> list[dict[str, Any]]:
        params = {"project": "microshop", "env": "dev", "service": "product", "q": "GET / 200", "since": "5m"}
        return shop.server.ok("GET", "/api/logs", params=params)["items"]

    lines = wait_until(product_lines, timeout=60, interval=0.5, message="product's access log lines")
    assert all(line["service"] == "product" and "GET / 200" in line["raw"] for line in lines)
    assert all(line["namespace"] == "microshop-dev" for line in lines)
    assert (
        shop.server.ok(
            "GET",
            "/api/logs",
            params={"project": "microshop", "service": "product", "level": "error", "q": "GET / 200"},
        )["items"]
        == []
    )
    bad = shop.server.api("GET", "/api/logs", params={"project": "microshop", "level": "loud"})
    assert bad.status_code == 422 and bad.json()["error"]["location"] == "level"
    rule = {
        "alert": "ProductTraffic",
        "severity": "P3",
        "log": {"match": "GET / 200", "threshold": 1, "window": "10s", "selector": 'service="product"'},
    }
    shop.server.ok("PUT", "/api/projects/microshop/observe", json={"log_rules": [rule]})
    try:
        firing = wait_until(
            lambda: shop.server.ok(
                "GET", "/api/alerts", params={"project": "microshop", "alertname": "ProductTraffic", "state": "firing"}
            )["items"],
            timeout=60,
            interval=0.5,
            message="the log rule to fire",
        )
        assert firing[0]["labels"]["service"] == "product" and firing[0]["labels"]["env"] == "microshop-dev"
        assert firing[0]["value"] > 1
    finally:
        shop.server.ok("PUT", "/api/projects/microshop/observe", json={"log_rules": []})
    refused = shop.server.api("PUT", "/api/projects/microshop/observe", json={"log_rules": [{"alert": "X"}]})
    assert refused.status_code == 422 and "log_rules[0]" in refused.json()["error"]["message"]


def test_the_cli_lists_alerts_adds_silences_and_draws_queries(shop: Shop) -> None:
    env = {**os.environ, "JUANIE_URL": shop.server.url, "JUANIE_TOKEN": shop.server.token, "COLUMNS": "200"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "juanie.cli.main", *args], env=env, capture_output=True, text=True, timeout=60
        )

    added = cli(
        "silence",
        "add",
        "-p",
        "microshop",
        "alertname=HighLatency",
        "service=order",
        "--duration",
        "30m",
        "--comment",
        "slow on purpose",
    )
    assert added.returncode == 0, added.stderr
    listed = cli("get", "silences", "-p", "microshop", "-o", "json")
    silence = next(s for s in json.loads(listed.stdout) if 'alertname="HighLatency"' in s["matchers"])
    assert silence["comment"] == "slow on purpose" and silence["status"] == "active"
    assert cli("silence", "expire", silence["id"]).returncode == 0
    alerts = cli("get", "alerts", "-p", "microshop", "--state", "resolved")
    assert alerts.returncode == 0 and "HighErrorRate" in alerts.stdout
    query = cli(
        "query", "sum by (service) (rate(juanie_gateway_requests_total[10s]))", "-p", "microshop", "--range", "2m"
    )
    assert query.returncode == 0, query.stderr
    assert 'service="product"' in query.stdout and any(ch in query.stdout for ch in "▁▂▃▄▅▆▇█")
    wrong = cli("silence", "add", "-p", "microshop", "alertname", "--comment", "x")
    assert wrong.returncode == 1 and "invalid matcher" in wrong.stderr and "Traceback" not in wrong.stderr


@pytest.mark.skipif(PROMETHEUS is None or ALERTMANAGER is None, reason="prometheus / alertmanager not installed")
def test_rendered_rules_fire_in_prometheus_and_its_alertmanager_posts_into_juanie(shop: Shop) -> None:
    work = shop.base / "prom"
    work.mkdir()
    spec = load_spec(shop.source)
    (work / "alerts.yaml").write_text(render_tree(spec)["monitoring/rules/alerts.yaml"])
    am_port, prom_port = free_port(), free_port()
    (work / "alertmanager.yml").write_text(
        yaml.safe_dump(
            {
                "route": {
                    "receiver": "juanie",
                    "group_by": ["alertname", "service", "env"],
                    "group_wait": "1s",
                    "group_interval": "2s",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {
                        "name": "juanie",
                        "webhook_configs": [
                            {
                                "url": f"{shop.server.url}/api/hooks/alertmanager",
                                "send_resolved": True,
                                "http_config": {"authorization": {"credentials": shop.server.token}},
                            }
                        ],
                    }
                ],
            }
        )
    )
    (work / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(work / "alerts.yaml")],
                "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
                "scrape_configs": [
                    {"job_name": "juanie-gateway", "static_configs": [{"targets": [f"127.0.0.1:{shop.admin_port}"]}]}
                ],
            }
        )
    )
    assert ALERTMANAGER is not None and PROMETHEUS is not None
    shop.extra.append(
        _start(
            [
                ALERTMANAGER,
                f"--config.file={work / 'alertmanager.yml'}",
                f"--storage.path={work / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            work / "alertmanager.log",
        )
    )
    shop.extra.append(
        _start(
            [
                PROMETHEUS,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            work / "prometheus.log",
        )
    )
    wait_until(lambda: httpx.get(f"http://127.0.0.1:{prom_port}/-/ready").status_code == 200, timeout=60)
    wait_until(lambda: httpx.get(f"http://127.0.0.1:{am_port}/-/ready").status_code == 200, timeout=60)

    def received() -> list[dict[str, Any]]:
        return [
            e
            for e in shop.events("alert.received")
            if e["data"]["labels"].get("alertname") == "HighErrorRate"
            and e["data"]["labels"].get("service") == "product"
            and e["data"]["status"] == "firing"
        ]

    shop.fault(50)
    try:
        event = wait_until(received, timeout=120, interval=0.5, message="Alertmanager's webhook into Juanie")[0]
    finally:
        shop.fault(0)
    labels = event["data"]["labels"]
    assert event["data"]["source"] == "alertmanager" and event["actor"] == "alertmanager:admin"
    assert labels["env"] == "microshop-dev" and labels["severity"] == "P1" and labels["project"] == "microshop"
    listed = shop.server.ok(
        "GET",
        "/api/alerts",
        params={"project": "microshop", "alertname": "HighErrorRate", "service": "product", "limit": 5},
    )["items"]
    assert listed and listed[0]["fingerprint"] == event["data"]["fingerprint"]
