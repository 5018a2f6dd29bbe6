"""Talking to the gateway process: its admin API, and starting it when it does not run yet.

The gateway is the data plane: a separate process in its own session, so it keeps serving while the Juanie
server
restarts or dies. `ensure_gateway` reuses a running gateway (pid file + healthz) and starts one otherwise. The
admin token is read from the gateway's state directory and never appears in a message or log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from juanie.engines.base import EngineError


class GatewayClient:
    """The gateway's admin API (`PUT/GET /routes`, weights, faults, in-flight counts, golden signals)."""

    def __init__(self, admin_url: str, token: str, timeout: float = 5.0) -> None:
        self.admin_url = admin_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"GatewayClient({self.admin_url!r})"

    def _http(self) -> httpx.AsyncClient:
        # An AsyncClient's pool belongs to one event loop; a new loop (a restarted server, a test) gets a new
        # one.
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(
                base_url=self.admin_url,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self._timeout,
            )
            self._loop = loop
        return self._client

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = await self._http().request(method, path, **kw)
        except httpx.HTTPError as err:
            raise EngineError(
                f"gateway admin API at {self.admin_url} is unreachable ({type(err).__name__}); "
                "is the gateway running? the engine starts it with ensure_gateway()"
            ) from None
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("error", {}).get("message") or resp.text[:300]
            except ValueError:
                detail = resp.text[:300]
            raise EngineError(f"gateway refused {method} {path}: HTTP {resp.status_code}: {detail}")
        return resp.json() if resp.content else None

    async def put_routes(self, routes: list[dict[str, Any]]) -> None:
        await self._call("PUT", "/routes", json={"routes": routes})

    async def get_routes(self) -> list[dict[str, Any]]:
        doc = await self._call("GET", "/routes")
        return list((doc or {}).get("routes") or [])

    async def set_weights(self, route: str, weights: dict[str, int]) -> None:
        await self._call("POST", f"/routes/{route}/weights", json=weights)

    async def set_fault(self, route: str, fault: dict[str, Any]) -> None:
        await self._call("POST", f"/routes/{route}/fault", json=fault)

    async def inflight(self, endpoint: str) -> int:
        doc = await self._call("GET", "/inflight", params={"endpoint": endpoint})
        return int((doc or {}).get("inflight") or 0)

    async def signals(self, env: str, service: str, window: float) -> dict[str, dict[str, Any]]:
        doc = await self._call("GET", "/signals", params={"env": env, "service": service, "window": window})
        return dict((doc or {}).get("versions") or {})

    async def healthy(self) -> bool:
        try:
            resp = await self._http().get("/healthz")
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    async def aclose(self) -> None:
        if self._client is not None:
            with contextlib.suppress(RuntimeError):
                await self._client.aclose()
            self._client = None


def _healthz(admin: str, timeout: float = 1.0) -> bool:
    try:
        return httpx.get(f"http://{admin}/healthz", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _running_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().split()[0])
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE or "juanie.engines.local.gateway" not in " ".join(p.cmdline()):
            return None
        return pid
    except (OSError, ValueError, IndexError, psutil.Error):
        return None


def read_token(state_dir: Path) -> str:
    """The admin token in `<state_dir>/admin-token`, created (0600) when absent."""
    path = state_dir / "admin-token"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def ensure_gateway(state_dir: Path, listen: str, admin: str, timeout: float = 20.0) -> GatewayClient:
    """Return a client for the gateway of `state_dir`, starting the gateway process first if it does not run.

    The gateway is started in its own session with its output in `gateway.log`, so it outlives this process.
    """
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    token = read_token(state_dir)
    pid_file = state_dir / "gateway.pid"
    pid = _running_pid(pid_file)
    if pid is None and _healthz(admin):
        raise EngineError(
            f"another gateway already answers on {admin} (not the one of {state_dir}); stop it, or give this "
            "server other ports with JUANIE_GATEWAY_PORT and JUANIE_GATEWAY_ADMIN_PORT"
        )
    if pid is None or not _healthz(admin):
        if pid is not None:
            raise EngineError(
                f"a gateway (pid {pid}) runs for {state_dir} but its admin API at {admin} does not answer; "
                "stop it or use the address it was started with"
            )
        log = open(state_dir / "gateway.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "juanie.engines.local.gateway",
                    "--listen",
                    listen,
                    "--admin",
                    admin,
                    "--state",
                    str(state_dir),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            log.close()
        if not pid_file.exists() or _running_pid(pid_file) is None:
            pid_file.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + timeout
        while not _healthz(admin):
            if proc.poll() is not None:
                tail = (state_dir / "gateway.log").read_text(errors="replace")[-500:]
                raise EngineError(f"the gateway exited with code {proc.returncode} at start: {tail.strip()}")
            if time.monotonic() > deadline:
                raise EngineError(f"the gateway did not answer on {admin}/healthz within {timeout:g}s")
            time.sleep(0.05)
    return GatewayClient(f"http://{admin}", token)
