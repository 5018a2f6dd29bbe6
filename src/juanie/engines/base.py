"""The one interface every engine implements, and the plain values that cross it.

Engines run *rendered Kubernetes manifests* (see ARCHITECTURE.md, "Engines"): the local engine turns them into
supervised processes behind the gateway, the Kubernetes engine applies them to a cluster. Everything above the
engines (delivery, controllers) speaks only this protocol, so a strategy never knows which engine it drives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Manifest = dict[str, Any]
"""One Kubernetes object as parsed from YAML (apiVersion, kind, metadata, spec, ...)."""

Health = Literal["Healthy", "Progressing", "Degraded", "Missing", "Suspended", "Unknown"]
SyncState = Literal["Synced", "OutOfSync", "Unknown"]


@dataclass(frozen=True)
class EnvRef:
    """Names one environment of one project; `namespace` is `<project>-<env>` unless configured otherwise."""

    project: str
    env: str
    namespace: str = ""

    @property
    def ns(self) -> str:
        return self.namespace or f"{self.project}-{self.env}"


@dataclass
class WorkloadStatus:
    """What an engine observes about one workload (a Deployment and its replicas)."""

    name: str
    kind: str = "Deployment"
    desired: int = 0
    ready: int = 0
    updated: int = 0
    available: int = 0
    version: str = ""
    versions: dict[str, int] = field(default_factory=dict)  # version -> ready replicas
    restarts: int = 0
    health: Health = "Unknown"
    message: str = ""
    instances: list[dict[str, Any]] = field(default_factory=list)
    limits: str = ""  # how resources.limits are enforced here, e.g. "limits: memory 256Mi (cgroup v2), cpu 0.5 cores …"


@dataclass
class EnvStatus:
    """An environment as an engine sees it: workloads, health, sync against the applied revision."""

    env: EnvRef
    workloads: list[WorkloadStatus] = field(default_factory=list)
    health: Health = "Unknown"
    sync: SyncState = "Unknown"
    revision: str = ""
    not_enforced: list[str] = field(
        default_factory=list
    )  # "NetworkPolicy/default-deny: not enforced locally"
    drift: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GoldenSignals:
    """Traffic of one version of one service over a window, as measured in front of it (the gateway)."""

    service: str
    version: str
    window_seconds: float
    requests: int = 0
    errors: int = 0  # responses with status >= 500 and failed connections
    rate: float = 0.0  # requests per second
    latency_p50: float | None = None  # seconds
    latency_p95: float | None = None
    latency_p99: float | None = None
    latency_buckets: tuple[tuple[float, int], ...] = ()  # (upper bound seconds, cumulative count)

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


class Engine(Protocol):
    """Converges an environment to a set of manifests and reports what runs. All methods are idempotent."""

    async def apply(self, env: EnvRef, manifests: list[Manifest], revision: str = "") -> None: ...

    async def status(self, env: EnvRef) -> EnvStatus: ...

    async def set_weights(self, env: EnvRef, route: str, weights: dict[str, int]) -> None: ...

    async def signals(self, env: EnvRef, service: str, version: str, window: float) -> GoldenSignals: ...

    async def delete(self, env: EnvRef) -> None: ...


class EngineError(Exception):
    """A manifest the engine cannot run, or an environment it cannot reach; the message says what to do."""
