"""In-memory view of an environment the supervisor manages: its replicas, and the status computed from them.

`Instance` joins the persisted record (what adoption needs) with what only lives in memory (the process
handle,
probe states, the resolved environment with its secrets). `workload_status` turns the view into the engine's
`WorkloadStatus` through the pure rules in `rollout.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from juanie.engines.base import EnvRef, WorkloadStatus
from juanie.engines.local.logs import LogCollector, LogLabels, LogSource
from juanie.engines.local.manifests import DesiredEnv, WorkloadSpec
from juanie.engines.local.probes import ProbeState
from juanie.engines.local.procs import Handle
from juanie.engines.local.rollout import HealthInput, InstanceView, workload_health
from juanie.engines.local.state import EnvRecord, InstanceRecord
from juanie.sandbox import LimitPlan


@dataclass
class Instance:
    rec: InstanceRecord
    spec: WorkloadSpec | None = None  # the template this replica was started from (None when adopted and changed)
    handle: Handle | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False)  # holds secret values: memory only
    readiness: ProbeState = field(default_factory=ProbeState)
    liveness: ProbeState = field(default_factory=ProbeState)
    started_mono: float = 0.0
    next_start: float = 0.0  # monotonic time of the next restart while waiting in back-off
    backoff_n: int = 0
    backoff_seconds: float = 0.0  # the wait chosen after the latest exit (kubelet's "back-off Ns restarting")
    exited_at: float = 0.0  # wall-clock time the latest exit was noticed
    stopping: bool = False
    last_error: str = ""  # the latest probe failure or start error
    last_exit: str = ""  # why the replica last stopped running (crash, liveness, outside kill)
    probe_task: asyncio.Task[None] | None = None
    cpu_prev: tuple[float, float] | None = None  # (wall, cpu seconds)
    cpu_cores: float = 0.0
    cmdline_confirmed: bool = False
    limits: LimitPlan | None = None  # how this replica's resources.limits are enforced (None when adopted)

    @property
    def running(self) -> bool:
        return self.handle is not None and self.handle.exit_code is None

    @property
    def phase(self) -> str:
        if self.stopping:
            return "Terminating"
        if not self.running:
            return "CrashLoopBackOff" if self.backoff_n >= 2 else "Restarting"
        return "Running" if self.rec.ready else "Starting"

    def view(self) -> InstanceView:
        return InstanceView(
            name=self.rec.name,
            template_hash=self.rec.template_hash,
            ready=self.rec.ready and self.running and not self.stopping,
            running=self.running,
            restarts=self.rec.restarts,
            crash_looping=self.backoff_n >= 3 and not (self.running and self.rec.ready),
        )


@dataclass
class EnvRuntime:
    ref: EnvRef
    dir: Path
    record: EnvRecord
    desired: DesiredEnv
    manifests: list[dict]  # as stored (Secret values stripped)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    instances: dict[str, Instance] = field(default_factory=dict)
    collector: LogCollector | None = None
    drift: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=50))
    errors: dict[str, str] = field(default_factory=dict)  # workload -> why it cannot start
    hpa_history: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    hpa_last: float = 0.0
    retry_at: dict[str, float] = field(default_factory=dict)  # workload -> when to try starting replicas again
    state_digest: str = ""
    state_stat: tuple[int, int] = (0, 0)

    def of(self, workload: str) -> list[Instance]:
        return [i for i in self.instances.values() if i.rec.workload == workload]

    def replicas(self, w: WorkloadSpec) -> int:
        if w.name in self.desired.hpas:
            h = self.desired.hpas[w.name]
            n = self.record.hpa_replicas.get(w.name, max(w.replicas, h.min_replicas))
            return min(max(n, h.min_replicas), h.max_replicas)
        return w.replicas

    def raw_logs(self, instance: str) -> tuple[Path, Path]:
        base = self.dir / "logs" / "raw"
        return base / f"{instance}.stdout.log", base / f"{instance}.stderr.log"

    def log_sources(self) -> list[LogSource]:
        out = []
        for inst in self.instances.values():
            labels = LogLabels(
                project=self.ref.project,
                env=self.ref.env,
                service=inst.spec.service if inst.spec else inst.rec.workload,
                version=inst.rec.version,
                instance=inst.rec.name,
            )
            out_path, err_path = self.raw_logs(inst.rec.name)
            out += [LogSource(out_path, labels, "stdout"), LogSource(err_path, labels, "stderr")]
        return out

    def note_drift(self, message: str) -> None:
        self.drift.append((time.time(), message))


def workload_status(rt: EnvRuntime, w: WorkloadSpec, now_wall: float) -> WorkloadStatus:
    insts = [i for i in rt.of(w.name) if not i.stopping]
    views = [i.view() for i in insts]
    desired = rt.replicas(w)
    started = rt.record.rollout_started.get(w.name)
    new = [i for i in insts if i.rec.template_hash == w.template_hash]
    errors = [(i.last_exit if i.view().crash_looping else i.last_error) for i in new]
    errors = [e for e in errors if e]
    last_error = rt.errors.get(w.name) or (errors[0] if errors else "")
    health, message = workload_health(
        HealthInput(
            desired=desired,
            template_hash=w.template_hash,
            instances=views,
            rollout_age=(now_wall - started) if started else 0.0,
            progress_deadline=w.progress_deadline,
            last_error=last_error,
            paused=w.paused,
        )
    )
    if rt.errors.get(w.name) and health != "Healthy":
        health, message = "Degraded", rt.errors[w.name]
    versions: dict[str, int] = {}
    for v in views:
        inst = rt.instances[v.name]
        if v.ready:
            versions[inst.rec.version] = versions.get(inst.rec.version, 0) + 1
    return WorkloadStatus(
        name=w.name,
        kind="Deployment",
        desired=desired,
        ready=sum(1 for v in views if v.ready),
        updated=len(new),
        available=sum(1 for v in views if v.ready),
        version=w.version,
        versions=versions,
        restarts=sum(i.rec.restarts for i in rt.of(w.name)),
        health=health,
        message=message,
        instances=[
            {
                "name": i.rec.name,
                "pid": i.rec.pid if i.running else None,
                "port": i.rec.port,
                "version": i.rec.version,
                "track": w.track,
                "template_hash": i.rec.template_hash,
                "ready": i.view().ready,
                "phase": i.phase,
                "restarts": i.rec.restarts,
                "started_at": i.rec.started_at,
                "exited_at": i.exited_at or None,
                "backoff_seconds": i.backoff_seconds,
                "cpu_cores": round(i.cpu_cores, 3),
                "last_error": i.last_error,
                "last_exit": i.last_exit,
            }
            for i in sorted(rt.of(w.name), key=lambda i: i.rec.name)
        ],
    )
