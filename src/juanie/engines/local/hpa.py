"""The HorizontalPodAutoscaler's arithmetic, as Kubernetes documents it. Pure.

desired = ceil(current * utilization / target), skipped inside a 10% tolerance, clamped to [min, max]. Scale-
up
acts at once; scale-down takes the highest recommendation of the stabilization window, so a short lull does
not
remove replicas that the next burst needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from juanie.engines.local.manifests import HpaSpec

TOLERANCE = 0.1


@dataclass(frozen=True)
class CpuSample:
    """CPU use of one ready replica over an interval: cores used = delta cpu seconds / delta wall seconds."""

    cores: float


def utilization_percent(samples: list[CpuSample], request_cores: float) -> float | None:
    """Average CPU utilization of the replicas relative to their request (1 core when none is requested)."""
    if not samples:
        return None
    per = request_cores if request_cores > 0 else 1.0
    return 100.0 * sum(s.cores for s in samples) / (len(samples) * per)


def recommend(hpa: HpaSpec, current: int, utilization: float | None) -> int:
    """The replica count the autoscaler asks for right now (before stabilization)."""
    current = max(current, 1)
    if utilization is None:
        return min(max(current, hpa.min_replicas), hpa.max_replicas)
    ratio = utilization / hpa.target_cpu_percent
    want = current if abs(ratio - 1.0) <= TOLERANCE else math.ceil(current * ratio)
    return min(max(want, hpa.min_replicas), hpa.max_replicas)


def stabilize(
    history: list[tuple[float, int]], now: float, recommendation: int, current: int, window: float
) -> tuple[int, list[tuple[float, int]]]:
    """Apply the scale-down stabilization window; returns (replicas, trimmed history including this one)."""
    kept = [(t, r) for t, r in history if now - t <= window] + [(now, recommendation)]
    if recommendation >= current:
        return recommendation, kept
    return max(r for _, r in kept), kept
