"""Each service as a real process, as the platform runs it: start, serve probes, log JSON, stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from microshop_support import ROOT, ServiceProcess, clean_env, free_port, port_open, wait_until

ABSENT_ANNOUNCEMENTS = {
    "product": "REDIS_URL is not set; product cache is in-process only",
    "order": "AMQP_URL is not set; events are disabled",
    "payment": "PAYMENT_API_KEY is not set: payments are refused",
}


@pytest.mark.parametrize("service", ["user", "product", "order", "payment"])
def test_service_starts_without_database_url_and_stops_cleanly_on_sigterm(
    service: str, spawn: Callable[..., ServiceProcess]
) -> None:
    proc = spawn(service, {"SERVICE_VERSION": "1.0.0-test"})
    health = proc.get("/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert health.headers["X-Service-Version"] == "1.0.0-test"
    assert proc.get("/").json()["service"] == service
    assert "http_requests_total" in proc.get("/metrics").text
    expected_ready = 503 if service == "payment" else 200  # payment waits for its API key
    assert proc.get("/ready").status_code == expected_ready
    assert proc.terminate() == 0
    lines = proc.log_lines()  # every line parses as JSON, or this raises
    assert all({"ts", "level", "service", "msg", "trace_id"} <= set(line) for line in lines)
    assert {line["service"] for line in lines} == {service}
    assert lines[-1]["msg"] == "stopped cleanly"
    assert any(f"microshop-{service}.db" in line["msg"] for line in lines)
    if service in ABSENT_ANNOUNCEMENTS:  # a dependency that is not configured is said so, once, at startup
        assert sum(ABSENT_ANNOUNCEMENTS[service] in line["msg"] for line in lines) == 1


def test_payment_api_key_never_reaches_the_logs(spawn: Callable[..., ServiceProcess]) -> None:
    secret = f"sk_live_{free_port()}_do_not_log"
    proc = spawn("payment", {"PAYMENT_API_KEY": secret, "LOG_LEVEL": "debug"})
    wait_until(lambda: proc.get("/ready").status_code == 200, what="payment ready")
    charged = httpx.post(proc.url + "/payments", json={"order_id": 3, "amount_cents": 10}, timeout=10)
    assert charged.status_code == 201 and secret not in charged.text
    assert proc.terminate() == 0
    log = proc.log_text()
    assert "credential loaded from PAYMENT_API_KEY" in log
    assert secret not in log


def test_log_level_is_honoured(spawn: Callable[..., ServiceProcess]) -> None:
    proc = spawn("user", {"LOG_LEVEL": "warning"})
    httpx.get(proc.url + "/users/1", timeout=10)
    assert proc.terminate() == 0
    assert {line["level"] for line in proc.log_lines()} <= {"warning", "error", "critical"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "not-a-port"}, "invalid configuration: PORT must be an integer between 1 and 65535"),
        (
            {"DATABASE_URL": "mysql://root:hunter2@db/shop"},
            "invalid configuration: DATABASE_URL must start with",
        ),
    ],
)
def test_bad_configuration_exits_2_with_one_clear_line(tmp_path: Path, env: dict[str, str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "microshop.user"],
        cwd=ROOT,
        env=clean_env(DATA_DIR=str(tmp_path), **env),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    entry = json.loads(result.stdout.strip().splitlines()[-1])
    assert entry["level"] == "error" and message in entry["msg"]
    assert "hunter2" not in result.stdout


class _SlowShop(BaseHTTPRequestHandler):
    """Stands in for user, product and payment; user lookups wait until the test releases them."""

    gate: threading.Event
    arrived: threading.Event

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.startswith("/users/"):
            self.arrived.set()
            self.gate.wait(timeout=30)
            self._reply(200, {"id": 1, "email": "a@b.c", "name": "A"})
        else:
            self._reply(200, {"id": int(self.path.rsplit("/", 1)[1]), "name": "p", "price_cents": 300})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._reply(201, {"id": 77})

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def slow_shop() -> Iterator[tuple[str, threading.Event, threading.Event]]:
    handler = type("Handler", (_SlowShop,), {"gate": threading.Event(), "arrived": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.gate, handler.arrived
    finally:
        handler.gate.set()
        server.shutdown()
        server.server_close()


def test_sigterm_lets_the_in_flight_request_finish_then_exits_0(
    spawn: Callable[..., ServiceProcess], slow_shop: tuple[str, threading.Event, threading.Event]
) -> None:
    url, gate, arrived = slow_shop
    proc = spawn("order", {"USER_URL": url, "PRODUCT_URL": url, "PAYMENT_URL": url})
    result: dict[str, httpx.Response] = {}

    def place_order() -> None:
        result["response"] = httpx.post(
            proc.url + "/orders", json={"user_id": 1, "items": [{"product_id": 5, "quantity": 2}]}, timeout=30
        )

    client = threading.Thread(target=place_order)
    client.start()
    wait_until(arrived.is_set, timeout=15, what="the order to reach the user lookup")
    proc.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: not port_open("127.0.0.1", proc.port), timeout=15, what="the listener to close")
    assert proc.proc.poll() is None  # still finishing the in-flight order
    gate.set()
    client.join(timeout=30)
    response = result["response"]
    assert response.status_code == 201, response.text
    assert response.json()["total_cents"] == 600 and response.json()["status"] == "paid"
    assert proc.proc.wait(timeout=15) == 0
