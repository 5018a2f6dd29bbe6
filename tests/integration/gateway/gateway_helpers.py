"""Helpers for gateway tests: real gateway and backend processes, route documents, a polling helper."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent
BACKEND = HERE / "backend_app.py"


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy; fail with a clear message after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as err:  # the thing polled may not be up yet
            last_error = err
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last error: {last_error!r})")


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@dataclass
class Backend:
    name: str
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def count(self) -> int:
        return int(httpx.get(f"http://{self.endpoint}/__count", timeout=5).json()["count"])

    def kill(self) -> None:
        kill_group(self.proc)


@dataclass
class GatewayProc:
    state_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    listen: str = ""
    admin: str = ""
    token: str = ""
    extra_args: list[str] = field(default_factory=list)
    fast_path: bool = True  # False: every head through httptools (JUANIE_GATEWAY_FASTPATH=0)

    @property
    def url(self) -> str:
        return f"http://{self.listen}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.admin}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def start(self, listen: str = "127.0.0.1:0", admin: str = "127.0.0.1:0") -> None:
        info = self.state_dir / "gateway.json"
        info.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "juanie.engines.local.gateway", "--listen", listen, "--admin", admin,
             "--state", str(self.state_dir), "--log-level", "WARNING", *self.extra_args],
            start_new_session=True,
            env={**os.environ, "JUANIE_GATEWAY_FASTPATH": "1" if self.fast_path else "0"},
        )  # fmt: skip
        data = wait_until(lambda: info.exists() and json.loads(info.read_text()), timeout=20)
        self.listen, self.admin = data["listen"], data["admin"]
        self.token = (self.state_dir / "admin-token").read_text().strip()
        wait_until(lambda: httpx.get(f"{self.admin_url}/healthz", timeout=2).status_code == 200)

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None:
            kill_group(self.proc, sig)
            self.proc = None

    def put_routes(self, routes: list[dict[str, Any]]) -> httpx.Response:
        return httpx.put(f"{self.admin_url}/routes", json={"routes": routes}, headers=self.auth, timeout=10)

    def admin_get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.admin_url}{path}", params=params, headers=self.auth, timeout=10)

    def admin_post(self, path: str, body: Any) -> httpx.Response:
        return httpx.post(f"{self.admin_url}{path}", json=body, headers=self.auth, timeout=10)


def route(
    name: str = "shop-dev/payment",
    backends: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A route document with sensible defaults for tests."""
    env, _, service = name.partition("/")
    doc: dict[str, Any] = {
        "name": name,
        "env": env,
        "service": service,
        "hosts": [f"{service}.{env}.localhost"],
        "path_prefix": f"/{env}/{service}",
        "timeout_seconds": 10,
        "backends": backends or [],
    }
    doc.update(extra)
    return doc


def start_backend(name: str, mode: str = "normal") -> Backend:
    """Start a backend process; it binds a free port and reports it on stdout."""
    proc = subprocess.Popen(
        [sys.executable, str(BACKEND), "--name", name, "--mode", mode],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("READY "):
        kill_group(proc)
        raise AssertionError(f"backend {name} did not start: {line!r}")
    return Backend(name, proc, int(line.split()[1]))


@dataclass
class Outcome:
    status: int  # 0 when the request failed at the connection level
    version: str = ""
    error: str = ""
    seconds: float = 0.0


async def _read_response(reader: Any) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readline()).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.read()
    return status, headers, body


async def load(
    address: str,
    path: str,
    *,
    total: int | None = None,
    rate: float | None = None,
    duration: float | None = None,
    concurrency: int = 16,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> list[Outcome]:
    """A small keep-alive HTTP/1.1 load generator on raw asyncio streams (much faster than httpx).

    Either `total` requests as fast as `concurrency` connections allow, or a steady `rate` (requests/s) for
    `duration` seconds. Always bounded in count and time. A failed connection counts as status 0 and is
    reopened for the next request.
    """
    import asyncio

    host, port = address.rsplit(":", 1)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()
    outcomes: list[Outcome] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    if rate is not None:
        assert duration is not None
        planned = int(rate * duration)
    else:
        assert total is not None
        planned = total
    counter = iter(range(planned))

    async def worker() -> None:
        conn: tuple[Any, Any] | None = None
        for i in counter:
            if rate is not None:
                due = start + i / rate
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            t0 = loop.time()
            try:
                if conn is None:
                    conn = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
                reader, writer = conn
                writer.write(request)
                status, resp_headers, _ = await asyncio.wait_for(_read_response(reader), timeout)
                outcomes.append(Outcome(status, resp_headers.get("x-juanie-version", ""), "", loop.time() - t0))
                if resp_headers.get("connection", "").lower() == "close":
                    writer.close()
                    conn = None
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as err:
                outcomes.append(Outcome(0, "", repr(err), loop.time() - t0))
                if conn is not None:
                    conn[1].close()
                conn = None
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


def free_port() -> int:
    """A port nothing listens on (bound and released): connecting to it is refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
