"""Golden signals per (env, service, version): cumulative counters for /metrics, per-second rings for windows.

Recording a request is a handful of integer additions (no locks, no label lookups in prometheus-client),
so the measurement costs the proxy almost nothing. The ring keeps one slot per second for `RING_SECONDS`,
which bounds memory per series whatever the traffic; series silent for longer than the ring are forgotten.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25,
    0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0,
)  # fmt: skip
"""Upper bounds in seconds; a final +Inf bucket is implicit. Dense below 100 ms where services live."""

RING_SECONDS = 960
"""Per-second history kept per series: 16 minutes, so a 15-minute window is always complete."""

SeriesKey = tuple[str, str, str]  # (env, service, version)


@dataclass(slots=True)
class _Slot:
    second: int = -1
    requests: int = 0
    errors: int = 0
    buckets: list[int] = field(default_factory=list)  # per-bucket counts (not cumulative), +Inf last


@dataclass(slots=True)
class Series:
    """Everything measured for one version: totals since start and the last RING_SECONDS seconds."""

    codes: dict[int, int] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    duration_sum: float = 0.0
    ring: list[_Slot | None] = field(default_factory=lambda: [None] * RING_SECONDS)
    last_second: int = 0


@dataclass(frozen=True)
class WindowSignals:
    """A version's traffic over a trailing window, as `GET /signals` reports it."""

    requests: int
    errors: int
    rate: float
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    latency_buckets: tuple[tuple[float, int], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "rate": self.rate,
            "latency_p50": self.latency_p50,
            "latency_p95": self.latency_p95,
            "latency_p99": self.latency_p99,
            "latency_buckets": [[le, n] for le, n in self.latency_buckets],
        }


def window_seconds(window: float) -> int:
    """Whole seconds a window covers, clamped to what the ring holds."""
    return max(1, min(math.ceil(window), RING_SECONDS - 1))


@dataclass(slots=True)
class WindowCounts:
    """Requests, errors and per-bucket latency counts (+Inf last) of one version over `seconds`.

    Counts add up across gateway processes; quantiles don't, so workers send these and the sum is turned
    into `WindowSignals` once.
    """

    seconds: int
    requests: int = 0
    errors: int = 0
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))

    def add(self, other: WindowCounts) -> WindowCounts:
        return WindowCounts(
            self.seconds,
            self.requests + other.requests,
            self.errors + other.errors,
            [a + b for a, b in zip(self.counts, other.counts, strict=True)],
        )

    def signals(self) -> WindowSignals:
        cumulative: list[tuple[float, int]] = []
        running = 0
        for le, n in zip(LATENCY_BUCKETS, self.counts, strict=False):
            running += n
            cumulative.append((le, running))
        return WindowSignals(
            requests=self.requests,
            errors=self.errors,
            rate=self.requests / self.seconds,
            latency_p50=quantile(0.50, LATENCY_BUCKETS, self.counts),
            latency_p95=quantile(0.95, LATENCY_BUCKETS, self.counts),
            latency_p99=quantile(0.99, LATENCY_BUCKETS, self.counts),
            latency_buckets=tuple(cumulative),
        )

    def to_wire(self) -> list[Any]:
        return [self.seconds, self.requests, self.errors, self.counts]

    @classmethod
    def from_wire(cls, data: list[Any]) -> WindowCounts:
        seconds, requests, errors, counts = data
        if len(counts) != len(LATENCY_BUCKETS) + 1:
            raise ValueError(f"expected {len(LATENCY_BUCKETS) + 1} latency buckets, got {len(counts)}")
        return cls(int(seconds), int(requests), int(errors), [int(n) for n in counts])


@dataclass(slots=True)
class SeriesTotals:
    """Cumulative counters of one series since its process started: what /metrics exposes."""

    key: SeriesKey
    codes: dict[int, int]
    buckets: list[int]
    duration_sum: float

    def to_wire(self) -> list[Any]:
        return [list(self.key), [[c, n] for c, n in self.codes.items()], self.buckets, self.duration_sum]

    @classmethod
    def from_wire(cls, data: list[Any]) -> SeriesTotals:
        key, codes, buckets, duration_sum = data
        env, service, version = key
        return cls(
            (str(env), str(service), str(version)),
            {int(c): int(n) for c, n in codes},
            [int(n) for n in buckets],
            float(duration_sum),
        )


def merge_totals(parts: list[list[SeriesTotals]]) -> list[SeriesTotals]:
    """Add up the totals of several processes, series by series (sorted by key, as /metrics lists them)."""
    merged: dict[SeriesKey, SeriesTotals] = {}
    for part in parts:
        for totals in part:
            into = merged.get(totals.key)
            if into is None:
                merged[totals.key] = SeriesTotals(
                    totals.key, dict(totals.codes), list(totals.buckets), totals.duration_sum
                )
                continue
            for code, n in totals.codes.items():
                into.codes[code] = into.codes.get(code, 0) + n
            into.buckets = [a + b for a, b in zip(into.buckets, totals.buckets, strict=True)]
            into.duration_sum += totals.duration_sum
    return [merged[k] for k in sorted(merged)]


def is_error(code: int) -> bool:
    """Errors for the judge: 5xx answers, including the gateway's own 502/503/504 for failed upstreams."""
    return code >= 500


def quantile(q: float, bounds: tuple[float, ...], counts: list[int]) -> float | None:
    """Estimate a quantile from per-bucket counts (last one +Inf) by linear interpolation, like Prometheus.

    None when there are no observations; observations above the last finite bound report that bound.
    """
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    cumulative = 0
    for i, count in enumerate(counts):
        if count and cumulative + count >= rank:
            if i >= len(bounds):
                return bounds[-1]
            lower = bounds[i - 1] if i > 0 else 0.0
            return lower + (bounds[i] - lower) * ((rank - cumulative) / count)
        cumulative += count
    return bounds[-1]


class TrafficStats:
    """All series of one gateway process. Not thread-safe: it lives on the event loop."""

    def __init__(self) -> None:
        self.series: dict[SeriesKey, Series] = {}

    def record(self, key: SeriesKey, code: int, seconds: float, now: float) -> None:
        """Count one finished request; `now` is wall-clock seconds (time.time())."""
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = Series()
        series.codes[code] = series.codes.get(code, 0) + 1
        index = bisect_left(LATENCY_BUCKETS, seconds)
        series.buckets[index] += 1
        series.duration_sum += seconds
        second = int(now)
        slot = series.ring[second % RING_SECONDS]
        if slot is None:
            slot = series.ring[second % RING_SECONDS] = _Slot(buckets=[0] * (len(LATENCY_BUCKETS) + 1))
        if slot.second != second:
            slot.second, slot.requests, slot.errors = second, 0, 0
            slot.buckets[:] = [0] * len(slot.buckets)
        slot.requests += 1
        if code >= 500:
            slot.errors += 1
        slot.buckets[index] += 1
        series.last_second = second

    def window(self, key: SeriesKey, window: float, now: float) -> WindowSignals:
        """Sum the last `window` seconds (clamped to the ring) of one series, including the current second."""
        return self.window_counts(key, window, now).signals()

    def window_counts(self, key: SeriesKey, window: float, now: float) -> WindowCounts:
        """The raw sums behind `window`: what gateway workers send so the primary can add them up."""
        seconds = window_seconds(window)
        current = int(now)
        oldest = current - seconds + 1
        requests = errors = 0
        counts = [0] * (len(LATENCY_BUCKETS) + 1)
        series = self.series.get(key)
        if series is not None:
            for slot in series.ring:
                if slot is not None and oldest <= slot.second <= current:
                    requests += slot.requests
                    errors += slot.errors
                    for i, n in enumerate(slot.buckets):
                        if n:
                            counts[i] += n
        return WindowCounts(seconds, requests, errors, counts)

    def totals(self) -> list[SeriesTotals]:
        """Cumulative counters of every series (for /metrics), in a form that can cross a process boundary."""
        return [SeriesTotals(key, dict(s.codes), list(s.buckets), s.duration_sum) for key, s in self.series.items()]

    def versions(self, env: str, service: str) -> list[str]:
        return sorted(v for (e, s, v) in self.series if e == env and s == service)

    def forget_older_than(self, now: float) -> int:
        """Drop series with no traffic within the ring; returns how many were dropped. Bounds memory."""
        limit = int(now) - RING_SECONDS
        stale = [k for k, s in self.series.items() if s.last_second < limit]
        for key in stale:
            del self.series[key]
        return len(stale)
