"""From `juanie.yaml` to the rollout's and the judge's settings, and rollout state to and from JSON — pure."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from juanie.delivery.judge import JudgeConfig, Sample
from juanie.delivery.plan import CanaryStep, RolloutConfig, RolloutState, VerdictRecord
from juanie.engines.base import EnvStatus, GoldenSignals
from juanie.spec import ProjectSpec, duration_seconds


def strategy_of(spec: ProjectSpec, env: str) -> str:
    environment = spec.environments.get(env)
    return environment.strategy.type if environment is not None else "rolling"


def rollout_config(spec: ProjectSpec, env: str, strategy: str | None = None) -> RolloutConfig:
    """The environment's strategy; canary steps end in 100 in juanie.yaml, which is the promotion itself."""
    environment = spec.environments.get(env)
    chosen = strategy or (environment.strategy.type if environment else "rolling")
    if environment is not None and chosen == "blue_green" and environment.strategy.auto_promote_after:
        preview = float(duration_seconds(environment.strategy.auto_promote_after))
        return RolloutConfig(strategy="blue_green", preview_analysis_seconds=preview)
    if environment is None or chosen != "canary":
        return RolloutConfig(strategy=chosen)  # type: ignore[arg-type]
    steps = tuple(CanaryStep(s.weight, float(duration_seconds(s.pause))) for s in environment.strategy.steps
                  if s.weight < 100)
    return RolloutConfig(strategy="canary", steps=steps or RolloutConfig().steps)


def judge_config(spec: ProjectSpec, service: str | None = None) -> JudgeConfig:
    slo = spec.slo_for(service) if service else spec.slo
    p99 = getattr(slo.latency, "p99", None) if slo else None
    return JudgeConfig.from_slo(success_rate=slo.availability if slo else None,
                                p99_seconds=float(duration_seconds(p99)) if p99 else None)


def sample(signals: GoldenSignals) -> Sample:
    """The gateway's counts as the judge takes them (its histogram with the +Inf bucket added)."""
    buckets = tuple((float(le), int(count)) for le, count in signals.latency_buckets)
    if buckets:
        buckets = (*buckets, (math.inf, signals.requests))
    return Sample(requests=signals.requests, errors=signals.errors, latency_buckets=buckets, p99=signals.latency_p99)


def rollout_to_dict(state: RolloutState) -> dict[str, Any]:
    data = dataclasses.asdict(state)
    data["verdicts"] = [dataclasses.asdict(v) for v in state.verdicts[-50:]]
    return data


def rollout_from_dict(data: dict[str, Any]) -> RolloutState:
    fields = {f.name for f in dataclasses.fields(RolloutState)}
    values = {k: v for k, v in data.items() if k in fields}
    values["verdicts"] = tuple(VerdictRecord(**v) for v in data.get("verdicts", []))
    return RolloutState(**values)


def new_replicas(status: EnvStatus, strategy: str, version: str) -> tuple[int, int]:
    """(ready, desired) replicas of the new version: the canary workloads, or for rolling every workload's."""
    ready = desired = 0
    for w in status.workloads:
        if strategy in ("canary", "blue_green"):
            if w.name.endswith("-canary"):
                ready, desired = ready + w.ready, desired + w.desired
        else:
            ready += w.versions.get(version, 0)
            desired += w.desired
    return ready, desired


def stable_revision(status: EnvStatus) -> str:
    """The version every non-canary workload runs, once they all run one and are fully updated; else ""."""
    versions = set()
    for w in status.workloads:
        if w.name.endswith("-canary"):
            continue
        if w.ready != w.desired or w.updated != w.desired or len([v for v, n in w.versions.items() if n]) > 1:
            return ""
        versions.add(w.version)
    return versions.pop() if len(versions) == 1 else ""


def rolled_out(status: EnvStatus, version: str) -> bool:
    return bool(status.workloads) and all(
        w.version == version and w.ready >= w.desired and w.updated >= w.desired and w.health == "Healthy"
        for w in status.workloads)
