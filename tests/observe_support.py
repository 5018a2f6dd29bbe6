"""Shared by the observe tests (unit, integration and e2e): polling with a deadline, a real HTTP receiver on
127.0.0.1 (and the allow-list that lets the server reach it), and the fast HighErrorRate rule with the gateway fault
that fires it."""

from __future__ import annotations

import contextlib
import json
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.server_support import Server, git
from tests.support import http_server


def _wait_until(predicate: Callable[[], object], timeout: float = 15.0, message: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@pytest.fixture
def wait_until() -> Callable[..., object]:
    return _wait_until


# Receivers, SMTP servers and Prometheus in these tests listen on 127.0.0.1, which a user's URL may not reach unless
# the administrator allows it (juanie.egress): a test server gets this in its environment. A CIDR, so a receiver
# started after the server is reachable too, while the server's own ports stay refused.
LOOPBACK_ALLOWED = {"JUANIE_ALLOWED_PRIVATE_URLS": "127.0.0.1/32"}


@pytest.fixture
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same allow-list for notifiers and Prometheus backends built inside the test process."""
    for name, value in LOOPBACK_ALLOWED.items():
        monkeypatch.setenv(name, value)


@dataclass
class Receiver:
    """Answers POSTs with scripted status codes (then 200) and records every request it got."""

    url: str = ""
    script: list[int] = field(default_factory=list)
    delay: float = 0.0
    body: bytes = b'{"ok": true}'
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r["json"] for r in self.requests]


@contextlib.contextmanager
def serve_receiver() -> Iterator[Receiver]:
    """A Receiver listening until the block ends; a context manager so that fixtures of any scope can hold one."""
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            with receiver.lock:
                status = receiver.script.pop(0) if receiver.script else 200
                receiver.requests.append({"path": self.path, "json": json.loads(raw or b"null"), "status": status})
            if receiver.delay:
                time.sleep(receiver.delay)  # the server simulating a slow receiver, not the test waiting
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(receiver.body)))
            self.end_headers()
            self.wfile.write(receiver.body)

        def log_message(self, *args: object) -> None:
            return

    with http_server(Handler) as url:
        receiver.url = f"{url}/hook"
        yield receiver


@pytest.fixture
def http_receiver() -> Iterator[Receiver]:
    with serve_receiver() as receiver:
        yield receiver


def fault_rule(for_: str = "4s") -> dict[str, str]:
    """microshop's HighErrorRate over a 10 s window instead of minutes, pending for `for_`: an injected gateway fault
    fires it within seconds, and clearing the fault resolves it within seconds, so the tests that use it stay short."""
    return {
        "name": "HighErrorRate",
        "for": for_,
        "expr": '100 * sum by (env, service) (rate(juanie_gateway_requests_total{code=~"5.."}[10s])) '
        "/ sum by (env, service) (rate(juanie_gateway_requests_total[10s])) > 5",
    }


def add_fault_rule(source: Path, for_: str = "4s") -> None:
    """Put `fault_rule(for_)` first under `alerts:` in the repository's juanie.yaml and commit it. Written into the
    text rather than through a YAML round trip, so the rest of the file stays exactly as the team wrote it."""
    rule = yaml.safe_dump([fault_rule(for_)], sort_keys=False, width=1000)
    path = source / "juanie.yaml"
    text = path.read_text()
    assert "alerts:\n" in text, f"{path} has no alerts: section to put the rule in"
    path.write_text(text.replace("alerts:\n", "alerts:\n" + textwrap.indent(rule, "  "), 1))
    git(source, "commit", "-qam", "alerts: a fast HighErrorRate")


def inject_fault(server: Server, admin_port: int, route: str, abort_percent: float) -> None:
    """Abort `abort_percent` of the requests to `route` at the gateway with a 503 (its admin API, as chaos tests do)."""
    token = (server.data_dir / "gateway" / "admin-token").read_text().strip()
    response = httpx.post(
        f"http://127.0.0.1:{admin_port}/routes/{route}/fault",
        headers={"Authorization": f"Bearer {token}"},
        json={"abort_percent": abort_percent, "abort_status": 503},
        timeout=10,
    )
    assert response.status_code == 200, response.text
