"""Helpers for the local engine's integration tests: manifests, polling, a bounded load generator, cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).parent
APP = HERE / "apps" / "app.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(predicate: Callable[[], Awaitable[Any]], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll an async predicate until it returns something truthy; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            last = predicate()
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


def deployment(
    name: str,
    release: Path,
    *,
    replicas: int = 1,
    version: str = "v1",
    env: dict[str, str] | None = None,
    extra_env: list[dict[str, Any]] | None = None,
    readiness: dict[str, Any] | None = None,
    liveness: dict[str, Any] | None = None,
    max_surge: Any = 1,
    max_unavailable: Any = 0,
    grace: float = 5,
    deadline: float = 600,
    service: str | None = None,
    track: str | None = None,
    cpu: str | None = None,
) -> dict[str, Any]:
    """A Deployment as the renderer writes it, running the test app from `release` (a file:// image)."""
    app = service or name
    container: dict[str, Any] = {
        "name": app,
        "image": f"file://{release}",
        "command": ["python3"],
        "args": [str(release / "app.py")],
        "ports": [{"name": "http", "containerPort": 8000}],
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()] + (extra_env or []),
        "readinessProbe": readiness
        if readiness is not None
        else {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 0.2, "failureThreshold": 2},
    }
    if liveness:
        container["livenessProbe"] = liveness
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}}
    annotations = {"juanie.dev/track": track} if track else {}
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/version": version}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": deadline,
            "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable},
            },
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {"terminationGracePeriodSeconds": grace, "containers": [container]},
            },
        },
    }


def service(name: str, app: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app.kubernetes.io/name": app or name},
            "ports": [{"port": 80, "targetPort": "http"}],
        },
    }


def get(gateway_listen: str, host: str, path: str = "/", timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection(gateway_listen, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        body = resp.read()
        try:
            return resp.status, json.loads(body)
        except ValueError:
            return resp.status, {"raw": body.decode(errors="replace")}
    finally:
        conn.close()


@dataclass
class Load:
    """Steady HTTP load through the gateway from threads with keep-alive connections, bounded in time."""

    listen: str
    host: str
    rate: float = 250.0
    workers: int = 8
    max_seconds: float = 60.0
    ok: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    started: float = 0.0
    stopped: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Load:
        self.started = time.monotonic()
        for i in range(self.workers):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _run(self, i: int) -> None:
        per = self.rate / self.workers
        conn: http.client.HTTPConnection | None = None
        n = 0
        t0 = time.monotonic()
        while not self._stop.is_set() and time.monotonic() - self.started < self.max_seconds:
            if conn is None:
                conn = http.client.HTTPConnection(self.listen, timeout=10)
            try:
                conn.request("GET", f"/load/{i}", headers={"Host": self.host})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status == 200:
                    v = json.loads(body).get("version", "?")
                    with self._lock:
                        self.ok += 1
                        self.versions[v] = self.versions.get(v, 0) + 1
                else:
                    with self._lock:
                        self.failed += 1
                        self.failures.append(f"HTTP {resp.status}: {body[:200]!r}")
                if resp.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                with self._lock:
                    self.failed += 1
                    self.failures.append(f"{type(e).__name__}: {e}")
                conn.close()
                conn = None
            n += 1
            pause = t0 + n / per - time.monotonic()
            if pause > 0:
                self._stop.wait(pause)  # pacing the load, not waiting for a condition
        if conn is not None:
            conn.close()

    def stop(self) -> Load:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)
        self.stopped = time.monotonic()
        return self

    @property
    def total(self) -> int:
        return self.ok + self.failed

    @property
    def achieved_rate(self) -> float:
        return self.total / max(1e-9, self.stopped - self.started)


@dataclass
class LoadProcess:
    """A `Load` running in its own process; `progress()` reads its latest report."""

    proc: subprocess.Popen[bytes]
    out: Path

    @classmethod
    def start(
        cls, listen: str, host: str, out: Path, rate: float = 300, workers: int = 10, seconds: float = 60
    ) -> LoadProcess:
        argv = [
            sys.executable,
            str(HERE / "apps" / "load.py"),
            listen,
            host,
            str(rate),
            str(workers),
            str(seconds),
            str(out),
        ]
        return cls(subprocess.Popen(argv, start_new_session=True), out)

    def progress(self) -> dict[str, Any]:
        try:
            return json.loads(self.out.read_text())
        except (OSError, ValueError):
            return {"ok": 0, "failed": 0, "versions": {}, "final": False}

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        return self.progress()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


def kill_everything_under(root: Path, extra_pids: list[int] | None = None) -> None:
    """Kill the process group of every process whose command line or working directory is under `root`
    (and of `extra_pids`)."""
    groups: set[int] = set()
    me = os.getpgid(0)
    for p in psutil.process_iter(["pid", "cmdline", "cwd"]):
        with contextlib.suppress(psutil.Error, OSError):
            mentions = any(str(root) in part for part in (p.info["cmdline"] or []))
            if mentions or str(p.info["cwd"] or "").startswith(str(root)):
                groups.add(os.getpgid(p.pid))
    for pid in extra_pids or []:
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(pid))
    groups.discard(me)
    for g in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(g, signal.SIGKILL)
