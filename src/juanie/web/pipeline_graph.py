"""A pipeline run's steps as the graph the run page draws: waves of stages, each with its steps. Pure.

The run record keeps a flat list of steps (`{key, stage, step, state, started, finished, exit_code}`) in the
order the executor planned them. Stages that run side by side share a wave: by default `test` and `quality`
both follow `build` and come before `package`, so the graph reads build → test/quality → package. A step
list may also carry an explicit `wave` number per step, which wins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

PARALLEL_STAGES = frozenset({"test", "quality"})
"""Stages the default pipeline runs at the same time (both need only `build`)."""

_FINAL = frozenset({"succeeded", "failed", "cancelled", "skipped"})


@dataclass(frozen=True)
class StepView:
    key: str
    stage: str
    name: str
    state: str
    started: float | None
    finished: float | None
    exit_code: int | None
    duration: float | None
    message: str = ""


@dataclass(frozen=True)
class StageView:
    name: str
    state: str
    steps: tuple[StepView, ...]
    duration: float | None


@dataclass(frozen=True)
class Wave:
    index: int
    stages: tuple[StageView, ...]


def _seconds(value: Any) -> float | None:
    """Step times are Unix seconds; an ISO timestamp is accepted too, anything else is no time at all."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def step_view(raw: Mapping[str, Any], now: float) -> StepView:
    """One step with its duration: finished − started, or time so far while it runs."""
    key = str(raw.get("key") or "")
    stage = str(raw.get("stage") or key.split("/", 1)[0] or "?")
    name = str(raw.get("step") or (key.split("/", 1)[1] if "/" in key else key) or stage)
    state = str(raw.get("state") or "queued")
    started, finished = _seconds(raw.get("started")), _seconds(raw.get("finished"))
    duration = None
    if started is not None:
        end = finished if finished is not None else (now if state == "running" else None)
        duration = max(0.0, end - started) if end is not None else None
    exit_code = raw.get("exit_code")
    return StepView(
        key=key or f"{stage}/{name}",
        stage=stage,
        name=name,
        state=state,
        started=started,
        finished=finished,
        exit_code=exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
        duration=duration,
        message=str(raw.get("message") or ""),
    )


def stage_state(states: Sequence[str]) -> str:
    """A stage's state from its steps': failed wins, then running, cancelled; all done is succeeded."""
    if not states:
        return "queued"
    if "failed" in states:
        return "failed"
    if "running" in states:
        return "running"
    if "cancelled" in states:
        return "cancelled"
    if all(s == "skipped" for s in states):
        return "skipped"
    if all(s in _FINAL for s in states):
        return "succeeded"
    if any(s in _FINAL for s in states):
        return "running"  # some steps done, the rest about to start
    return "queued"


def _stage_duration(steps: Sequence[StepView]) -> float | None:
    """Wall time of a stage: first start to last end (steps of a stage may run in parallel)."""
    starts = [s.started for s in steps if s.started is not None]
    ends = [s.started + s.duration for s in steps if s.started is not None and s.duration is not None]
    if not starts or not ends:
        return None
    return max(0.0, max(ends) - min(starts))


def waves(steps: Sequence[Mapping[str, Any]], now: float) -> list[Wave]:
    """Group the run's steps into stages (first-seen order) and the stages into waves."""
    views = [step_view(raw, now) for raw in steps if isinstance(raw, Mapping)]
    order: list[str] = []
    by_stage: dict[str, list[StepView]] = {}
    explicit: dict[str, int] = {}
    for raw, view in zip((r for r in steps if isinstance(r, Mapping)), views, strict=True):
        if view.stage not in by_stage:
            order.append(view.stage)
            by_stage[view.stage] = []
        by_stage[view.stage].append(view)
        wave = raw.get("wave")
        if isinstance(wave, int) and not isinstance(wave, bool) and view.stage not in explicit:
            explicit[view.stage] = wave
    stages = [
        StageView(
            name, stage_state([s.state for s in by_stage[name]]), tuple(by_stage[name]), _stage_duration(by_stage[name])
        )
        for name in order
    ]
    if explicit and len(explicit) == len(order):
        grouped: dict[int, list[StageView]] = {}
        for stage in stages:
            grouped.setdefault(explicit[stage.name], []).append(stage)
        return [Wave(i, tuple(grouped[k])) for i, k in enumerate(sorted(grouped))]
    result: list[list[StageView]] = []
    for stage in stages:
        previous = result[-1] if result else None
        if previous and stage.name in PARALLEL_STAGES and all(p.name in PARALLEL_STAGES for p in previous):
            previous.append(stage)
        else:
            result.append([stage])
    return [Wave(i, tuple(group)) for i, group in enumerate(result)]


def run_duration(started: datetime | None, finished: datetime | None, now: datetime) -> float | None:
    """How long a run took, or has been running."""
    if started is None:
        return None
    end = finished or now
    if end.tzinfo is None and started.tzinfo is not None:
        end = end.replace(tzinfo=started.tzinfo)
    if started.tzinfo is None and end.tzinfo is not None:
        started = started.replace(tzinfo=end.tzinfo)
    return max(0.0, (end - started).total_seconds())
