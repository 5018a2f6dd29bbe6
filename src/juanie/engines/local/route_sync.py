"""Keeps the gateway's route table equal to what the environments want, and notices when someone changed it.

The whole table is PUT (the gateway replaces it atomically) whenever the wanted table changes, serialised by a
lock so that a replica's removal always reaches the gateway before that replica is stopped. Periodically the
table the gateway serves is read back: a difference is drift, reported on the environment and corrected.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from juanie.engines.base import EngineError
from juanie.engines.local.gateway_client import GatewayClient
from juanie.engines.local.routes import ReadyEndpoint, comparable, env_routes, one_owner_per_host
from juanie.engines.local.runtime import EnvRuntime

log = logging.getLogger("juanie.engines.local")


def ready_endpoints(rt: EnvRuntime) -> list[ReadyEndpoint]:
    return [
        ReadyEndpoint(i.rec.workload, i.rec.version, f"127.0.0.1:{i.rec.port}")
        for i in rt.instances.values()
        if i.view().ready
    ]


def wanted_routes(envs: dict[str, EnvRuntime]) -> list[dict[str, Any]]:
    """Every environment's routes, a hostname kept by the environment that claimed it first (never by name order,
    which a newcomer could choose)."""
    routes: list[dict[str, Any]] = []
    for ns in sorted(envs, key=lambda n: (envs[n].record.created, n)):
        rt = envs[ns]
        routes += env_routes(ns, rt.desired, ready_endpoints(rt), rt.record.weights)
    return sorted(one_owner_per_host(routes), key=lambda r: r["env"])  # stable: services stay in order


class RouteSync:
    def __init__(self, gateway: GatewayClient) -> None:
        self.gateway = gateway
        self.pushed: list[dict[str, Any]] | None = None
        self.error = ""
        self._lock: asyncio.Lock | None = None

    def in_sync(self, rt: EnvRuntime) -> bool:
        """Whether the gateway was last given exactly the routes this environment wants now."""
        pushed = {r["name"]: comparable(r) for r in self.pushed or []}
        wanted = env_routes(rt.ref.ns, rt.desired, ready_endpoints(rt), rt.record.weights)
        return all(pushed.get(r["name"]) == comparable(r) for r in wanted)

    async def sync(self, envs: dict[str, EnvRuntime], check: bool = False) -> None:
        """Push the table when it changed; with `check`, first compare with what the gateway really serves."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            routes = wanted_routes(envs)
            try:
                if check and self.pushed is not None:
                    live = {r.get("name"): comparable(r) for r in await self.gateway.get_routes()}
                    want = {r["name"]: comparable(r) for r in routes}
                    if live != want:
                        _report_drift(envs, live, want)
                        self.pushed = None
                if routes != self.pushed:
                    await self.gateway.put_routes(routes)
                    self.pushed = routes
                self.error = ""
            except EngineError as e:
                self.error = str(e)
                log.warning("%s", e)


def _report_drift(envs: dict[str, EnvRuntime], live: dict[Any, Any], want: dict[Any, Any]) -> None:
    for name in sorted(set(live) | set(want), key=str):
        rt = envs.get(str(name).split("/", 1)[0])
        if live.get(name) != want.get(name) and rt is not None:
            rt.note_drift(f"HTTPRoute/{name}: the gateway's route differed from the desired one; restored")
