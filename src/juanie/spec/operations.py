"""The operational parts of `juanie.yaml`: SLOs, alert rules, alert routing, pipeline, load tests, backups."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import SpecModel
from .fields import Cron, Duration, EnvValue, EnvVarName, HttpPath, Identifier, Percent, ShellLine

Severity = Literal["P0", "P1", "P2", "P3"]
SEVERITIES: tuple[Severity, ...] = ("P0", "P1", "P2", "P3")


class Latency(SpecModel):
    """Latency objectives: the given percentile of requests is served within the duration."""

    p50: Duration | None = None
    p90: Duration | None = None
    p95: Duration | None = None
    p99: Duration | None = None

    def targets(self) -> list[tuple[int, str]]:
        """(percentile, duration) pairs that are set, lowest percentile first."""
        pairs = [(50, self.p50), (90, self.p90), (95, self.p95), (99, self.p99)]
        return [(p, d) for p, d in pairs if d is not None]


class Slo(SpecModel):
    """Service level objectives; availability drives the burn-rate alerts."""

    availability: Percent = Field(default=99.5, description="percent of requests that succeed (not 5xx)")
    latency: Latency = Latency(p95="500ms", p99="2s")
    window: Duration = "30d"


class AlertRule(SpecModel):
    """An alert. A rule named like a default (ServiceDown, HighErrorRate, ...) changes that default."""

    name: Identifier
    severity: Severity | None = None
    expr: str | None = Field(default=None, description="PromQL; required for alerts that are not defaults")
    for_: Duration | None = Field(default=None, alias="for")
    threshold: float | None = None
    summary: str | None = None
    description: str | None = None
    runbook: str | None = None
    enabled: bool = True
    labels: dict[str, str] = Field(default_factory=dict)


class Alerting(SpecModel):
    """Where Alertmanager sends alerts, per severity; the default is Juanie's own Alertmanager webhook."""

    webhook: str = "http://juanie.juanie-system.svc:8080/api/hooks/alertmanager"
    group_by: list[str] = Field(default_factory=lambda: ["alertname", "service", "env"])


class Stage(SpecModel):
    """One pipeline stage: shell lines run in order in the checkout, each with the stage's timeout."""

    run: list[ShellLine] = Field(default_factory=list)
    timeout: Duration = "10m"
    env: dict[EnvVarName, EnvValue] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"run": [data]}
        if isinstance(data, list):
            return {"run": data}
        if isinstance(data, dict) and isinstance(data.get("run"), str):
            return {**data, "run": [data["run"]]}
        return data


class Pipeline(SpecModel):
    """The four stages of every run; an empty `package` means Juanie packages the release itself."""

    build: Stage = Stage()
    test: Stage = Stage()
    quality: Stage = Stage()
    package: Stage = Stage()


class LoadRequest(SpecModel):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    path: HttpPath
    weight: int = Field(default=1, ge=1, le=1000)
    body: dict[str, Any] | None = None


class LoadThresholds(SpecModel):
    p95: Duration | None = None
    p99: Duration | None = None
    error_rate: float = Field(default=1.0, ge=0, le=100, description="percent")


class LoadTest(SpecModel):
    """A load-test scenario run against one service of an environment."""

    name: Identifier
    service: str
    users: int = Field(default=10, ge=1, le=10000)
    spawn_rate: float = Field(default=5, gt=0, le=10000)
    duration: Duration = "60s"
    requests: list[LoadRequest] = Field(min_length=1)
    thresholds: LoadThresholds = LoadThresholds()


class Backup(SpecModel):
    """A scheduled backup of a backing service (postgres, redis, rabbitmq definitions)."""

    name: Identifier
    dependency: Literal["postgres", "redis", "rabbitmq"]
    schedule: Cron
    retention: Duration = "7d"
    environments: list[str] = Field(default_factory=lambda: ["prod"])

    @field_validator("environments", mode="before")
    @classmethod
    def _one(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value
