"""Helpers for microshop's tests: polling with a deadline, free ports, and real service processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_pids(port: int) -> set[int] | None:
    """The pids with a TCP socket listening on `port` (Linux /proc); None where that cannot be read."""
    inodes: set[str] = set()
    try:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as lines:
                for line in list(lines)[1:]:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{fields[9]}]")
        pids: set[int] = set()
        for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
            try:
                if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{pid}/fd")):
                    pids.add(pid)
            except OSError:
                continue
        return pids
    except OSError:
        return None


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any microshop setting, plus ``extra``."""
    keys = (
        "DATABASE_URL",
        "REDIS_URL",
        "AMQP_URL",
        "PAYMENT_API_KEY",
        "PORT",
        "HOST",
        "SERVICE_VERSION",
        "DATA_DIR",
        "USER_URL",
        "PRODUCT_URL",
        "PAYMENT_URL",
        "LOG_LEVEL",
        "REDIS_PREFIX",
        "AMQP_EXCHANGE",
    )
    env = {k: v for k, v in os.environ.items() if k not in keys}
    env.update(extra)
    return env


@dataclass
class ServiceProcess:
    service: str
    port: int
    proc: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10.0, **kwargs)

    def healthy(self) -> bool:
        """Our process listens on its port and answers /health. (A free port is only free when it was picked: another
        process may take it first, answer /health for us, and get our SIGTERM's worth of test wrong.)"""
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.service} exited with {self.proc.returncode}:\n{self.log_text()}")
        listeners = listening_pids(self.port)
        if listeners is not None and self.proc.pid not in listeners:
            return False
        try:
            return self.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def lost_its_port(self) -> bool:
        """Whether it could not listen because another process took its port first (microshop's own message, or
        uvicorn's: it exits by itself, code 3, when its bind fails at startup)."""
        log = self.log_text()
        return "cannot listen" in log or "address already in use" in log

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (every line must be JSON)."""
        return [json.loads(line) for line in self.log_text().splitlines() if line.strip()]

    def terminate(self, timeout: float = 15.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)


def start_service(service: str, workdir: Path, env: dict[str, str], wait_healthy: bool = True) -> ServiceProcess:
    """Run ``python -m microshop.<service>`` from the microshop checkout, as the platform would.

    A port picked here that another process took in the meantime is picked again (up to three times)."""
    for attempt in range(3):
        try:
            return _start_service(service, workdir, env, wait_healthy)
        except PortTaken:
            if "PORT" in env or attempt == 2:
                raise
    raise AssertionError("unreachable")


class PortTaken(AssertionError):
    """The service could not listen on the port it was given."""


def _start_service(service: str, workdir: Path, env: dict[str, str], wait_healthy: bool) -> ServiceProcess:
    port = int(env.get("PORT") or free_port())
    full_env = clean_env(PORT=str(port), DATA_DIR=str(workdir / f"data-{service}-{port}"), **env)
    log_path = workdir / f"{service}-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"microshop.{service}"],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sp = ServiceProcess(service, port, proc, log_path)
    if wait_healthy:
        try:
            wait_until(sp.healthy, timeout=30.0, what=f"{service} /health on port {port}")
        except BaseException as exc:
            sp.kill()
            if sp.lost_its_port():
                raise PortTaken(str(exc)) from exc
            raise
    return sp
