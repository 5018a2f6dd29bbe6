"""Shared by the observe tests (unit and integration): polling with a deadline and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


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


@pytest.fixture
def http_receiver() -> Iterator[Receiver]:
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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
