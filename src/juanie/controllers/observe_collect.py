"""Feeding the metric store: the gateway's golden metrics, the local engine's processes, services' own /metrics.

The pure half turns what the engine reports (an ``EnvStatus``) into samples and scrape targets; ``Collector``
is the edge that reads the engine, the gateway and the services on each round. Labels follow the gateway's
convention (``env`` is the namespace, ``<project>-<env>``) so one expression means the same on the embedded store
and on a Prometheus that scrapes the same endpoints. Every series of a project carries ``project="<name>"`` (the
gateway's get it from their ``env``), because a project's queries are limited to that label.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil

from juanie.observe.metrics.model import Sample
from juanie.observe.metrics.scrape import ScrapeError, ScrapeTarget, scrape
from juanie.observe.metrics.store import MetricStore, SeriesLimitError

log = logging.getLogger("juanie.observe")

GATEWAY_JOB = "juanie-gateway"


@dataclass(frozen=True)
class EnvIdentity:
    """Who owns a namespace: the project and the environment name (``direct`` applies keep their own)."""

    project: str
    env: str
    namespace: str


def identify(namespace: str, known: Mapping[str, tuple[str, str]], engine_project: str = "") -> EnvIdentity:
    """The owner of ``namespace``: the database's environments win over what the engine was told at apply time,
    so manifests applied directly still count for the project whose environment has that namespace."""
    if namespace in known:
        project, env = known[namespace]
        return EnvIdentity(project, env, namespace)
    return EnvIdentity(engine_project or "direct", namespace, namespace)


def service_of(workload: str, track: str) -> str:
    """``payment-canary`` (track canary) is still the ``payment`` service."""
    suffix = f"-{track}"
    if track and track != "stable" and workload.endswith(suffix):
        return workload[: -len(suffix)]
    return workload


def process_samples(
    ident: EnvIdentity, workloads: Sequence[Any], memory: Mapping[int, int], now: float
) -> list[Sample]:
    """Per replica: up, CPU (cores used, a ratio of one core), resident memory and restarts (a counter)."""
    out: list[Sample] = []
    for w in workloads:
        for inst in w.instances:
            track = str(inst.get("track") or "stable")
            labels = {
                "project": ident.project,
                "env": ident.namespace,
                "service": service_of(w.name, track),
                "version": str(inst.get("version") or ""),
                "track": track,
                "instance": str(inst.get("name") or ""),
            }
            pid = inst.get("pid")
            out.append(Sample("juanie_process_up", labels, 1.0 if inst.get("ready") else 0.0, now))
            out.append(Sample("juanie_process_restarts_total", labels, float(inst.get("restarts") or 0), now))
            out.append(Sample("juanie_process_cpu_ratio", labels, float(inst.get("cpu_cores") or 0.0), now))
            if pid is not None and pid in memory:
                out.append(Sample("juanie_process_memory_bytes", labels, float(memory[pid]), now))
    return out


def scrape_targets(
    ident: EnvIdentity,
    workloads: Sequence[Any],
    metrics_paths: Mapping[str, str | None],
    interval: float,
    timeout: float,
) -> list[ScrapeTarget]:
    """One target per replica that has a port; a service whose spec says ``metrics: null`` is not scraped.

    ``job`` is the project, as in the rendered Prometheus configuration, so ``up{job="<project>"}`` is the same
    series on both backends.
    """
    targets: list[ScrapeTarget] = []
    for w in workloads:
        for inst in w.instances:
            port = inst.get("port")
            track = str(inst.get("track") or "stable")
            service = service_of(w.name, track)
            path = metrics_paths.get(service, "/metrics")
            if not port or path is None:
                continue
            labels = {
                "project": ident.project,
                "env": ident.namespace,
                "service": service,
                "version": str(inst.get("version") or ""),
            }
            targets.append(
                ScrapeTarget(
                    job=ident.project,
                    url=f"http://127.0.0.1:{int(port)}{path}",
                    interval=interval,
                    timeout=min(timeout, interval),
                    labels=labels,
                )
            )
    return targets


def with_project(samples: Sequence[Sample], owners: Mapping[str, str]) -> list[Sample]:
    """The gateway labels its series by ``env`` (the namespace) only; add the project owning that namespace, so the
    project's queries (limited to ``project="<name>"``) find its traffic. A namespace no project owns gets no
    ``project`` label and is seen by administrators only; a ``project`` label already there is not trusted."""
    out: list[Sample] = []
    for sample in samples:
        labels = {k: v for k, v in sample.labels.items() if k != "project"}
        owner = owners.get(labels.get("env", ""))
        if owner:
            labels["project"] = owner
        out.append(Sample(sample.name, labels, sample.value, sample.ts))
    return out


def _memory(pids: Sequence[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for pid in pids:
        try:
            out[pid] = int(psutil.Process(pid).memory_info().rss)
        except psutil.Error:
            continue
    return out


@dataclass
class TargetState:
    target: ScrapeTarget
    next_due: float = 0.0
    up: bool = False
    last_error: str | None = None
    last_scrape: float | None = None


@dataclass
class CollectStats:
    rounds: int = 0
    samples: int = 0
    refused_series: int = 0
    gateway_error: str = ""
    targets: dict[str, TargetState] = field(default_factory=dict)


STALE = math.nan  # a staleness marker: instant queries read NaN as "no value"
TARGET_SERIES = ("up", "scrape_duration_seconds", "scrape_samples_scraped")


class Collector:
    """One ``collect(engine, known)`` call reads every source once; scrape targets keep their own interval."""

    def __init__(self, store: MetricStore, interval: float, scrape_timeout: float) -> None:
        self.store = store
        self.interval = interval
        self.scrape_timeout = scrape_timeout
        self.stats = CollectStats()
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _append(self, samples: Sequence[Sample]) -> int:
        accepted = 0
        for s in samples:
            try:
                accepted += self.store.append(s.name, s.labels, s.value, s.ts)
            except SeriesLimitError as exc:
                self.stats.refused_series += 1
                if self.stats.refused_series == 1:
                    log.warning("%s", exc)
        self.stats.samples += accepted
        return accepted

    async def collect(
        self,
        engine: Any,
        known: Mapping[str, tuple[str, str]],
        metrics_paths: Mapping[str, Mapping[str, str | None]],
        now: float | None = None,
    ) -> None:
        """Read the gateway, the engine's processes and the due scrape targets once."""
        now = time.time() if now is None else now
        self.stats.rounds += 1
        if engine is None:
            return
        refs = list(engine.env_refs())
        gateway = getattr(engine, "gateway", None)
        if gateway is not None and getattr(gateway, "admin_url", ""):
            owners = {ns: project for ns, (project, _) in known.items()}
            owners.update({r.ns: r.project for r in refs if r.ns not in owners and r.project})
            await self._gateway(gateway.admin_url, now, owners)
        wanted: dict[str, ScrapeTarget] = {}
        for ref in refs:
            ident = identify(ref.ns, known, ref.project)
            try:
                status = await engine.status(ref)
            except Exception as exc:  # an environment that cannot be read is skipped this round, not fatal
                log.warning("observe: status of %s failed: %s", ref.ns, exc)
                continue
            pids = [i["pid"] for w in status.workloads for i in w.instances if i.get("pid")]
            memory = await asyncio.to_thread(_memory, pids)
            self._append(process_samples(ident, status.workloads, memory, now))
            paths = metrics_paths.get(ident.project, {})
            for target in scrape_targets(ident, status.workloads, paths, self.interval, self.scrape_timeout):
                wanted[target.url] = target
        await self._scrape_due(wanted, now)

    async def _gateway(self, admin_url: str, now: float, owners: Mapping[str, str]) -> None:
        timeout = min(self.scrape_timeout, self.interval)
        netloc = urlsplit(admin_url).netloc
        target = ScrapeTarget(GATEWAY_JOB, f"{admin_url}/metrics", self.interval, timeout, instance=netloc)
        await self._scrape_one(target, now, owners)
        state = self.stats.targets.get(target.url)
        self.stats.gateway_error = (state.last_error or "") if state else ""

    async def _scrape_due(self, wanted: dict[str, ScrapeTarget], now: float) -> None:
        for url in [u for u, s in self.stats.targets.items() if u not in wanted and s.target.job != GATEWAY_JOB]:
            gone = self.stats.targets.pop(url)  # a replica that is gone is no longer a target (service discovery)
            # As Prometheus does, mark its series stale at once: otherwise its last `up` (usually 0, scraped while
            # the replica stopped) answers for the whole lookback and `up == 0` reports a replica that no longer
            # exists after every rolling update or canary — and ServiceDown then inhibits the service's real alerts.
            labels = gone.target.target_labels
            self._append([Sample(name, labels, STALE, now) for name in TARGET_SERIES])
        due = [t for url, t in wanted.items() if self.stats.targets.get(url, TargetState(t)).next_due <= now]
        await asyncio.gather(*(self._scrape_one(t, now) for t in due))

    async def _scrape_one(self, target: ScrapeTarget, now: float, owners: Mapping[str, str] | None = None) -> None:
        state = self.stats.targets.get(target.url)
        if state is None or state.target != target:
            state = self.stats.targets[target.url] = TargetState(target)
        labels = target.target_labels
        started = time.monotonic()
        samples = 0
        try:
            parsed = await scrape(target.url, target.timeout, self._http(), ts=now, extra_labels=labels)
        except ScrapeError as exc:
            state.up, state.last_error = False, str(exc)
        else:
            for name, kind in parsed.types.items():
                self.store.set_type(name, kind)
            samples = self._append(parsed.samples if owners is None else with_project(parsed.samples, owners))
            state.up, state.last_error = True, None
        state.last_scrape = now
        state.next_due = now + target.interval - 0.001
        duration = time.monotonic() - started
        self._append(
            [
                Sample("up", labels, 1.0 if state.up else 0.0, now),
                Sample("scrape_duration_seconds", labels, duration, now),
                Sample("scrape_samples_scraped", labels, float(samples), now),
            ]
        )
