"""Helpers of the metrics and SSRF attack tests, each against a real `juanie up` server: start and stop one, add a
member, plant metric series, and a stand-in Prometheus on 127.0.0.1 that records what it is asked and answers as
scripted."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from juanie.observe.metrics.store import MetricStore
from tests.server_support import Server, start_server
from tests.support import http_server

PASSWORD = "a-long-enough-password"


def stop_server(server: Server) -> None:
    """Stop the server, then make sure nothing it started outlives the test."""
    server.stop()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def running(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    server = start_server(data_dir, env)
    try:
        yield server
    finally:
        stop_server(server)


def member(server: Server, project: str, username: str, role: str) -> str:
    """Give `username` (created on first use) `role` on `project`; return a token of theirs."""
    if server.api("GET", f"/api/users/{username}").status_code == 404:
        server.ok("POST", "/api/users", json={"username": username, "password": PASSWORD})
    server.ok("PUT", f"/api/projects/{project}/members", json={"user": username, "role": role})
    login = httpx.post(server.url + "/api/auth/login", auth=(username, PASSWORD), json={"token_name": project})
    assert login.status_code == 200, login.text
    return login.json()["token"]


def plant_series(data_dir: Path, projects: list[str], now: float) -> None:
    """Series of each project, labelled as the collector labels them (`project`, `env` = `<project>-dev`), from half
    an hour ago to ten minutes ahead, in the snapshot the server loads when it starts; plus one series nobody owns."""
    store = MetricStore()
    for project in projects:
        target = {"project": project, "env": f"{project}-dev", "service": "api", "job": project}
        for i, ts in enumerate(range(int(now) - 1800, int(now) + 600, 15)):
            store.append("up", {**target, "instance": f"{project}.internal:80"}, 1.0, ts)
            for code, per_step in (("200", 10.0), ("500", 1.0)):
                labels = {"project": project, "env": f"{project}-dev", "service": "api", "code": code}
                store.append("juanie_gateway_requests_total", labels, per_step * i, ts)
    store.append("up", {"job": "juanie-gateway", "instance": "127.0.0.1:1"}, 1.0, now)
    store.snapshot(data_dir / "observe" / "metrics.npz")


@dataclass
class FakePrometheus:
    """Answers Prometheus's query API; `script` holds (status, body) answers to give before the default empty one."""

    url: str = ""
    queries: list[str] = field(default_factory=list)
    script: list[tuple[int, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextlib.contextmanager
def serve_prometheus() -> Iterator[FakePrometheus]:
    fake = FakePrometheus()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            with fake.lock:
                fake.queries.extend(parse_qs(url.query).get("query", []))
                status, body = fake.script.pop(0) if fake.script else (200, b"")
            if not body:
                kind = "matrix" if url.path.endswith("query_range") else "vector"
                body = json.dumps({"status": "success", "data": {"resultType": kind, "result": []}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    with http_server(Handler) as url:
        fake.url = url
        yield fake


def series(answer: dict[str, Any]) -> list[dict[str, str]]:
    """The label sets of a Prometheus-shaped query answer."""
    return [item["metric"] for item in answer["data"]["result"]]
