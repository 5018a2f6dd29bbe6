"""A service of `juanie.yaml`: how to build it, how to run it, how to tell it is alive, what it needs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import SpecModel
from .fields import (
    Command,
    Cpu,
    Duration,
    EnvValue,
    EnvVarName,
    HttpPath,
    Memory,
    StringList,
    cpu_millicores,
    memory_bytes,
)
from .operations import Slo

Size = Literal["S", "M", "L"]
BACKING_SERVICES: tuple[str, ...] = ("postgres", "redis", "rabbitmq")
"""Dependencies that are not services of the project; each brings its connection URL as a secret."""


class Build(SpecModel):
    """How the service's artifact is built; without a command Juanie builds it (virtualenv or image)."""

    command: Command | None = None
    dockerfile: str = "Dockerfile"
    context: str = "."

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"command": data} if isinstance(data, str | list) else data


class Quantities(SpecModel):
    cpu: Cpu
    memory: Memory


class Resources(SpecModel):
    """Requests and limits of one container, in Kubernetes quantities."""

    requests: Quantities
    limits: Quantities


class Autoscaling(SpecModel):
    """Horizontal autoscaling on CPU, rendered as an HPA in environments that allow autoscaling."""

    min: int = Field(default=1, ge=1, le=1000)
    max: int = Field(ge=1, le=1000)
    target_cpu: int = Field(default=70, ge=1, le=100, description="target average CPU utilisation, percent")

    @model_validator(mode="after")
    def _ordered(self) -> Autoscaling:
        if self.min > self.max:
            raise ValueError(f"expected min <= max, got min {self.min} and max {self.max}")
        return self


class Probes(SpecModel):
    """Timing of the readiness and liveness probes (the paths are on the service)."""

    initial_delay: Duration = "0s"
    period: Duration = "5s"
    timeout: Duration = "2s"
    failure_threshold: int = Field(default=3, ge=1, le=100)


class SecretRef(SpecModel):
    """Where a secret environment variable comes from; Juanie injects the value at apply time."""

    name: str | None = Field(default=None, description="Secret object name; default <service>-secrets")
    key: str | None = Field(default=None, description="key inside the Secret; default the variable name")


DEFAULT_RESOURCES: dict[str, Resources] = {
    "S": Resources(
        requests=Quantities(cpu="100m", memory="128Mi"), limits=Quantities(cpu="500m", memory="256Mi")
    ),
    "M": Resources(
        requests=Quantities(cpu="250m", memory="256Mi"), limits=Quantities(cpu="1000m", memory="512Mi")
    ),
    "L": Resources(
        requests=Quantities(cpu="500m", memory="512Mi"), limits=Quantities(cpu="2000m", memory="1Gi")
    ),
}
"""Requests and limits per size when a service does not say; an environment picks the size."""


class Service(SpecModel):
    """One deployable unit: a process that listens on `port` and answers the health paths."""

    description: str = ""
    run: Command
    build: Build = Build()
    port: int = Field(default=8080, ge=1, le=65535)
    health: HttpPath = Field(default="/health", description="liveness path")
    ready: HttpPath = Field(default="/ready", description="readiness path")
    metrics: HttpPath | None = Field(
        default="/metrics", description="Prometheus metrics path; null to disable"
    )
    env: dict[EnvVarName, EnvValue] = Field(default_factory=dict)
    secrets: dict[EnvVarName, SecretRef] = Field(default_factory=dict)
    resources: dict[Size, Resources] = Field(default_factory=dict, description="overrides per size S/M/L")
    autoscaling: Autoscaling | None = None
    dependencies: StringList = Field(
        default_factory=list, description="other services of the project, or postgres / redis / rabbitmq"
    )
    grace_period: Duration = Field(default="30s", description="time between SIGTERM and SIGKILL")
    probes: Probes = Probes()
    slo: Slo | None = Field(default=None, description="overrides the project's SLO for this service")

    def resources_for(self, size: str) -> Resources:
        return self.resources.get(size) or DEFAULT_RESOURCES[size]  # type: ignore[index]

    @field_validator("resources")
    @classmethod
    def _limits_cover_requests(cls, value: dict[str, Resources]) -> dict[str, Resources]:
        for size, res in value.items():
            if cpu_millicores(res.limits.cpu) < cpu_millicores(res.requests.cpu):
                got = f"{res.limits.cpu} < {res.requests.cpu}"
                raise ValueError(f"size {size}: expected the CPU limit >= the request, got {got}")
            if memory_bytes(res.limits.memory) < memory_bytes(res.requests.memory):
                got = f"{res.limits.memory} < {res.requests.memory}"
                raise ValueError(f"size {size}: expected the memory limit >= the request, got {got}")
        return value

    @field_validator("secrets", mode="before")
    @classmethod
    def _secret_names(cls, value: Any) -> Any:
        """`secrets: [API_KEY]` is short for `secrets: {API_KEY: {}}`."""
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return {v: {} for v in value}
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @field_validator("dependencies")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for name in value:
            if name in seen:
                raise ValueError(f'expected each dependency once, got "{name}" twice')
            seen.add(name)
        return value
