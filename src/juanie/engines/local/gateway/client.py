"""The admin API from the caller's side: what the local engine uses to drive a running gateway.

A thin async httpx wrapper; errors come back as `GatewayAdminError` carrying the gateway's own message (never the
token). `signals_from_json` turns `GET /signals` into the engines' `GoldenSignals` without I/O.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from juanie.engines.base import GoldenSignals
from juanie.engines.local.gateway.state import INFO_FILE, TOKEN_FILE


class GatewayAdminError(Exception):
    """The gateway refused a request or could not be reached; the message says which and why."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def signals_from_json(service: str, window: float, data: dict[str, Any]) -> dict[str, GoldenSignals]:
    """`GET /signals` body -> GoldenSignals per version."""
    out: dict[str, GoldenSignals] = {}
    for version, v in data.get("versions", {}).items():
        out[version] = GoldenSignals(
            service=service,
            version=version,
            window_seconds=window,
            requests=int(v["requests"]),
            errors=int(v["errors"]),
            rate=float(v["rate"]),
            latency_p50=v.get("latency_p50"),
            latency_p95=v.get("latency_p95"),
            latency_p99=v.get("latency_p99"),
            latency_buckets=tuple((float(le), int(n)) for le, n in v.get("latency_buckets", [])),
        )
    return out


class GatewayClient:
    """Admin calls against one gateway (`http://127.0.0.1:8481` and its bearer token)."""

    def __init__(self, admin_url: str, token: str, timeout: float = 10.0) -> None:
        self.admin_url = admin_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.admin_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    @classmethod
    def from_state_dir(cls, state_dir: str | Path, timeout: float = 10.0) -> GatewayClient:
        """Find a running gateway from its state directory (gateway.json + admin-token)."""
        state = Path(state_dir)
        try:
            info = json.loads((state / INFO_FILE).read_text())
            token = (state / TOKEN_FILE).read_text().strip()
        except (OSError, ValueError) as err:
            raise GatewayAdminError(f"no running gateway found in {state}: {err}") from None
        return cls(f"http://{info['admin']}", token, timeout)

    async def close(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise GatewayAdminError(f"gateway admin at {self.admin_url} unreachable: {err}") from None
        if resp.status_code >= 400:
            try:
                message = resp.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = resp.text[:200]
            raise GatewayAdminError(f"{method} {path}: {resp.status_code}: {message}", resp.status_code)
        return resp.json()

    async def healthy(self) -> bool:
        try:
            return (await self._client.get("/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def put_routes(self, routes: list[dict[str, Any]]) -> None:
        await self._call("PUT", "/routes", json={"routes": routes})

    async def get_routes(self) -> list[dict[str, Any]]:
        return list((await self._call("GET", "/routes"))["routes"])

    async def set_weights(self, route: str, weights: dict[str, int]) -> dict[str, Any]:
        return dict((await self._call("POST", f"/routes/{route}/weights", json=weights))["route"])

    async def set_fault(self, route: str, fault: dict[str, Any]) -> dict[str, Any]:
        return dict((await self._call("POST", f"/routes/{route}/fault", json=fault))["route"])

    async def inflight(self, endpoint: str) -> int:
        return int((await self._call("GET", "/inflight", params={"endpoint": endpoint}))["inflight"])

    async def wait_drained(self, endpoint: str, timeout: float = 30.0, interval: float = 0.05) -> bool:
        """Poll until no request is in flight to `endpoint` (after it was removed from the routes)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if await self.inflight(endpoint) == 0:
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(interval)

    async def signals(self, env: str, service: str, window: float) -> dict[str, GoldenSignals]:
        data = await self._call("GET", "/signals", params={"env": env, "service": service, "window": window})
        return signals_from_json(service, window, data)

    async def metrics(self) -> str:
        try:
            return (await self._client.get("/metrics")).text
        except httpx.HTTPError as err:
            raise GatewayAdminError(f"gateway admin at {self.admin_url} unreachable: {err}") from None
