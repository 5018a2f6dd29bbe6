"""The local engine: rendered manifests run as supervised processes on this host, behind the gateway.

`LocalEngine` implements `engines.base.Engine`. `apply` validates everything it can before it changes anything
(images, ConfigMap/Secret references), records the desired state on disk, and takes the first step; the
supervision loop (`start()`, an asyncio task in the server) keeps taking steps. Processes and the gateway live
in
their own sessions, so `stop()` (or the server's death) leaves them serving; the next `start()` adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from juanie.engines.base import EngineError, EnvRef, EnvStatus, GoldenSignals, Manifest
from juanie.engines.local import procs
from juanie.engines.local.adoption import adopt_instances, env_ref, load_env
from juanie.engines.local.gateway_client import GatewayClient
from juanie.engines.local.launch import InstanceIdentity, resolve_env, resolve_image
from juanie.engines.local.logs import LogCollector, LogFilter, LogRecord, follow, read_logs
from juanie.engines.local.manifests import parse_manifests, routed_services
from juanie.engines.local.rollout import aggregate_health
from juanie.engines.local.route_sync import RouteSync
from juanie.engines.local.runtime import EnvRuntime, Instance, workload_status
from juanie.engines.local.state import (
    EnvRecord,
    atomic_write,
    secret_data,
    strip_secrets,
)
from juanie.engines.local.supervisor import Supervisor, Timing, remove_instance_files
from juanie.sandbox import Sandbox

log = logging.getLogger("juanie.engines.local")

_DNS = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
SecretsHook = Callable[[EnvRef], dict[str, dict[str, str]]]


def _no_secrets(env: EnvRef) -> dict[str, dict[str, str]]:
    return {}


class LocalEngine:
    """Runs environments as processes; see the module docstring. All public methods are idempotent."""

    def __init__(
        self,
        data_dir: Path,
        gateway: GatewayClient,
        releases_dir: Path | None = None,
        *,
        secrets: SecretsHook | None = None,
        timing: Timing | None = None,
        tick: float = 0.1,
        route_check_interval: float = 2.0,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.gateway = gateway
        self.releases_dir = Path(releases_dir) if releases_dir else self.data_dir / "releases"
        self.secrets: SecretsHook = secrets or _no_secrets
        self.timing = timing or Timing()
        self.tick = tick
        self.route_check_interval = route_check_interval
        self._envs: dict[str, EnvRuntime] = {}
        self._wake_event: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stops: set[asyncio.Task[None]] = set()
        self._routes = RouteSync(gateway)
        self._route_checked = 0.0
        self._adopted = False
        self._closing = False
        self.sandbox = sandbox or Sandbox.from_env()
        self._sup = Supervisor(self.releases_dir, self.timing, self._taken_ports, self._wake, self._begin_stop,
                               self.sandbox)

    # ---- lifecycle
    # ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Adopt what runs, then supervise in the background until `stop()`."""
        if self._task is not None and not self._task.done():
            return
        self._closing = False
        await self.adopt()
        await self._sync_routes()  # the same table as before when nothing changed: traffic is not disturbed
        self._wake_event = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="juanie-local-engine")

    async def stop(self, keep_running: bool = True) -> None:
        """Stop supervising. With keep_running (the default) every process keeps serving for the next start;
        without it every replica is stopped gracefully (the state on disk stays)."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        probes = []
        for rt in self._envs.values():
            for inst in rt.instances.values():
                if inst.probe_task is not None:
                    inst.probe_task.cancel()
                    probes.append(inst.probe_task)
                    inst.probe_task = None
        if probes:
            await asyncio.wait(probes, timeout=5)
        if not keep_running:
            for rt in self._envs.values():
                for inst in list(rt.instances.values()):
                    if not inst.stopping:
                        self._begin_stop(rt, inst, "engine stopped without keep_running")
        if self._stops:
            await asyncio.gather(*self._stops, return_exceptions=True)
        for rt in self._envs.values():
            self._sup.persist(rt)
        await self._sync_routes()  # leave the gateway with the last table this engine knew
        await self.gateway.aclose()

    async def adopt(self) -> None:
        """Load every environment from disk and take over its running processes.

        A process is adopted only when pid, start time and command line all match the record.
        """
        if self._adopted:
            return
        self._adopted = True
        root = self.data_dir / "envs"
        for state_path in sorted(root.glob("*/state.json")) if root.is_dir() else []:
            loaded = load_env(state_path)
            if loaded is None:
                continue
            record, manifests, desired = loaded
            ref = env_ref(record)
            rt = self._runtime(ref, record, desired, manifests)
            rt.secrets = self._secrets_for(ref, {})
            for inst in adopt_instances(rt, self.releases_dir):
                self._sup.start_probes(rt, inst, adopted=True)
            self._sup.persist(rt)
            self._envs[ref.ns] = rt

    # ---- Engine
    # ---------------------------------------------------------------------------------------------
    async def apply(self, env: EnvRef, manifests: list[Manifest], revision: str = "") -> None:
        await self.adopt()  # never start a second set of replicas beside ones a previous server left running
        ns = env.ns
        if not _DNS.match(ns):
            raise EngineError(f"namespace {ns!r}: expected lowercase letters, digits, '-' and '.' (a DNS name)")
        desired = parse_manifests(manifests)
        for w in desired.workloads.values():
            if not _DNS.match(w.name):
                raise EngineError(f"Deployment/{w.name}: expected a lowercase DNS name (letters, digits, '-', '.')")
            release = resolve_image(w.image, self.releases_dir)
            if not release.is_dir():
                raise EngineError(
                    f"Deployment/{w.name}: image {w.image!r} names {release}, which does not exist; "
                    "build and package the release first"
                )
        secrets = self._secrets_for(env, secret_data(manifests))
        for w in desired.workloads.values():  # dry run: a missing reference fails the apply, not a replica later
            ident = InstanceIdentity(env.project, env.env, ns, f"{w.name}-check", 1, self.data_dir)
            resolve_env(w, ident, desired.config_maps, secrets, {}, resolve_image(w.image, self.releases_dir), {})
        stored = strip_secrets(manifests)
        rt = self._owned(env)
        now = time.time()
        if rt is not None and rt.ref.project == "direct" and env.project != "direct":
            # An administrator's direct apply, now claimed by the environment the control plane gave it to.
            rt.ref, rt.record.project, rt.record.env = EnvRef(env.project, env.env, ns), env.project, env.env
        if rt is None:
            rt = self._runtime(env, EnvRecord(env.project, env.env, ns, created=now), desired, stored)
            self._envs[ns] = rt
            old = None
        else:
            old = rt.desired
            rt.desired, rt.manifests = desired, stored
        rt.secrets = secrets
        for w in desired.workloads.values():
            if old is None or w.name not in old.workloads or old.workloads[w.name].template_hash != w.template_hash:
                rt.record.rollout_started[w.name] = now
        for name in list(rt.record.rollout_started):
            if name not in desired.workloads:
                rt.record.rollout_started.pop(name)
        for svc, route in desired.routes.items():
            if route.weights and rt.record.manifest_weights.get(svc) != route.weights:
                rt.record.manifest_weights[svc] = dict(route.weights)
                rt.record.weights[svc] = dict(route.weights)
        rt.record.revision = revision
        rt.errors.clear()
        rt.retry_at.clear()
        atomic_write(rt.dir / "applied.json", json.dumps({"revision": revision, "manifests": stored}, indent=1))
        self._sup.reconcile(rt)
        self._wake()
        await self._sync_routes()

    async def status(self, env: EnvRef) -> EnvStatus:
        await self.adopt()
        rt = self._owned(env)
        if rt is None:
            return EnvStatus(env=env, health="Missing", sync="OutOfSync", drift=[], not_enforced=[])
        now = time.time()
        workloads = [workload_status(rt, w, now) for w in rt.desired.workloads.values()]
        for ws in workloads:
            ws.limits = self.sandbox.limit_plan(rt.desired.workloads[ws.name].limits, ws.name).describe()
        in_sync = self._routes.in_sync(rt) and not rt.errors
        return EnvStatus(
            env=env,
            workloads=workloads,
            health=aggregate_health([w.health for w in workloads]) if workloads else "Healthy",
            sync="Synced" if in_sync else "OutOfSync",
            revision=rt.record.revision,
            not_enforced=list(rt.desired.not_enforced),
            drift=[f"{time.strftime('%H:%M:%S', time.localtime(t))} {m}" for t, m in rt.drift if now - t < 600],
        )

    async def set_weights(self, env: EnvRef, route: str, weights: dict[str, int]) -> None:
        await self.adopt()
        rt = self._owned(env)
        if rt is None:
            raise EngineError(f"environment {env.ns} has not been applied to the local engine")
        service = route.split("/", 1)[1] if route.startswith(f"{env.ns}/") else route
        known = sorted(routed_services(rt.desired))
        if service not in known:
            raise EngineError(f"route {route!r} is not in environment {env.ns}; routes: {known}")
        for track, weight in weights.items():
            if track not in ("stable", "canary", "preview"):
                raise EngineError(f"weights: unknown track {track!r}; expected stable, canary or preview")
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
                raise EngineError(f"weights.{track}: expected an integer >= 0, got {weight!r}")
        rt.record.weights[service] = {**rt.record.weights.get(service, {}), **weights}
        self._sup.persist(rt)
        await self._sync_routes()

    async def signals(self, env: EnvRef, service: str, version: str, window: float) -> GoldenSignals:
        self._owned(env)
        versions = await self.gateway.signals(env.ns, service, window)
        v = versions.get(version) or {}
        return GoldenSignals(
            service=service,
            version=version,
            window_seconds=window,
            requests=int(v.get("requests") or 0),
            errors=int(v.get("errors") or 0),
            rate=float(v.get("rate") or 0.0),
            latency_p50=v.get("latency_p50"),
            latency_p95=v.get("latency_p95"),
            latency_p99=v.get("latency_p99"),
            latency_buckets=tuple((float(b), int(c)) for b, c in v.get("latency_buckets") or ()),
        )

    async def delete(self, env: EnvRef) -> None:
        await self.adopt()
        rt = self._owned(env)
        if rt is None:
            shutil.rmtree(self.data_dir / "envs" / env.ns, ignore_errors=True)
            return
        rt.desired.workloads.clear()
        for inst in list(rt.instances.values()):
            if not inst.stopping:
                self._begin_stop(rt, inst, "environment deleted")
        pending = [t for t in self._stops if not t.done()]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._envs.pop(env.ns, None)
        await self._sync_routes()
        shutil.rmtree(rt.dir, ignore_errors=True)

    # ---- logs
    # -----------------------------------------------------------------------------------------------
    def read_logs(
        self, env: EnvRef, filters: LogFilter | None = None, since: float = 0.0, limit: int = 1000
    ) -> list[LogRecord]:
        rt = self._owned(env)
        if rt is not None and rt.collector is not None:
            rt.collector.poll(rt.log_sources())
        return read_logs(self.data_dir / "envs" / env.ns / "logs", filters, since, limit)

    def follow(self, env: EnvRef, filters: LogFilter | None = None) -> AsyncIterator[LogRecord]:
        self._owned(env)
        return follow(self.data_dir / "envs" / env.ns / "logs", filters)

    @property
    def gateway_error(self) -> str:
        """Why the last push to the gateway failed ("" when it succeeded), for the server's health page."""
        return self._routes.error

    def env_refs(self) -> list[EnvRef]:
        return [rt.ref for rt in self._envs.values()]

    # ---- internals
    # ------------------------------------------------------------------------------------------
    def _owned(self, env: EnvRef) -> EnvRuntime | None:
        """The runtime of `env`'s namespace, refusing one that belongs to another environment: a namespace has one
        owner, and nobody else applies to it, reads its status or logs, or moves its traffic. `direct` (an
        administrator naming a namespace no environment holds) may act on any, and is claimed by its owner."""
        rt = self._envs.get(env.ns)
        if rt is None or "direct" in (env.project, rt.ref.project):
            return rt
        if (rt.ref.project, rt.ref.env) != (env.project, env.env):
            raise EngineError(f"namespace {env.ns} belongs to {rt.ref.project}/{rt.ref.env}, "
                              f"not to {env.project}/{env.env}")
        return rt

    def _runtime(self, ref: EnvRef, record: EnvRecord, desired: Any, manifests: list[Manifest]) -> EnvRuntime:
        d = self.data_dir / "envs" / ref.ns
        d.mkdir(parents=True, exist_ok=True)
        return EnvRuntime(
            ref=EnvRef(ref.project, ref.env, ref.ns),
            dir=d,
            record=record,
            desired=desired,
            manifests=manifests,
            collector=LogCollector(d / "logs"),
        )

    def _secrets_for(self, env: EnvRef, from_manifests: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        try:
            hooked = self.secrets(env) or {}
        except Exception as e:  # a broken hook must not take the engine down; say which, never the values
            raise EngineError(f"secrets for {env.ns} are unavailable: {type(e).__name__}") from None
        return {**from_manifests, **hooked}

    def _taken_ports(self) -> set[int]:
        return {
            p
            for rt in self._envs.values()
            for i in rt.instances.values()
            for p in (i.rec.port, *i.rec.ports.values())
            if p
        }

    def _wake(self) -> None:
        if self._wake_event is not None:
            self._wake_event.set()

    async def _sync_routes(self, check: bool = False) -> None:
        await self._routes.sync(self._envs, check)

    def _begin_stop(self, rt: EnvRuntime, inst: Instance, reason: str) -> None:
        inst.stopping = True
        task = asyncio.get_running_loop().create_task(self._stop_instance(rt, inst, reason))
        self._stops.add(task)
        task.add_done_callback(self._stops.discard)

    async def _stop_instance(self, rt: EnvRuntime, inst: Instance, reason: str) -> None:
        """Take the replica out of the gateway, let its in-flight requests finish, then stop it gracefully."""
        log.info("stopping %s: %s", inst.rec.name, reason)
        if inst.probe_task is not None:
            inst.probe_task.cancel()
            inst.probe_task = None
        spec = inst.spec or rt.desired.workloads.get(inst.rec.workload)
        grace = spec.grace_seconds if spec else 30.0
        if inst.handle is not None:
            await self._sync_routes()
            endpoint = f"127.0.0.1:{inst.rec.port}"
            deadline = time.monotonic() + min(self.timing.drain_timeout, grace)
            while time.monotonic() < deadline:
                try:
                    if await self.gateway.inflight(endpoint) == 0:
                        break
                except EngineError:
                    break
                await asyncio.sleep(0.05)
            await procs.stop_group(inst.handle, grace)
        if spec is not None:  # an adopted replica has no plan of this run: the same name gives the same cgroups
            plan = inst.limits or self.sandbox.limit_plan(spec.limits, f"{rt.ref.ns}.{inst.rec.name}")
            self.sandbox.release(plan)
        if rt.collector is not None:
            with contextlib.suppress(OSError):
                rt.collector.poll(rt.log_sources())
        rt.instances.pop(inst.rec.name, None)
        remove_instance_files(rt, inst)
        if self._envs.get(rt.ref.ns) is rt:
            self._sup.persist(rt)
        self._wake()

    async def _loop(self) -> None:
        assert self._wake_event is not None
        while not self._closing:
            try:
                for rt in list(self._envs.values()):
                    self._sup.reconcile(rt)
                now = time.monotonic()
                check = now - self._route_checked >= self.route_check_interval
                if check:
                    self._route_checked = now
                await self._sync_routes(check=check)
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must survive a bug in one step; the next step retries
                log.exception("local engine supervision step failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick):
                    await self._wake_event.wait()
            self._wake_event.clear()
