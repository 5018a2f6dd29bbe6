"""The gateway's Prometheus exposition, produced at scrape time from the traffic totals of every gateway process.

The hot path only adds integers to `TrafficStats`; this collector turns their sum (see `signals.merge_totals`) into
the standard families when /metrics is read, so there is one source of truth for both /metrics and /signals.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from juanie.engines.local.gateway.signals import LATENCY_BUCKETS, SeriesTotals

if TYPE_CHECKING:
    from collections.abc import Mapping


class GatewayCollector(Collector):
    """Exposes requests, latency, upstream errors and in-flight requests of a gateway (all its processes)."""

    def __init__(
        self,
        totals: list[SeriesTotals],
        upstream_errors: Mapping[tuple[str, str, str], int],
        inflight: int,
    ) -> None:
        self._totals = totals
        self._upstream_errors = upstream_errors
        self._inflight = inflight

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "juanie_gateway_requests", "Requests answered, by route and backend version and status code.",
            labels=["env", "service", "version", "code"],
        )  # fmt: skip
        durations = HistogramMetricFamily(
            "juanie_gateway_request_duration_seconds",
            "Time from the request head to the last response byte, by backend version.",
            labels=["env", "service", "version"],
        )
        for series in sorted(self._totals, key=lambda t: t.key):
            env, service, version = series.key
            for code, count in sorted(series.codes.items()):
                requests.add_metric([env, service, version, str(code)], count)
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for le, n in zip(LATENCY_BUCKETS, series.buckets, strict=False):
                cumulative += n
                buckets.append((repr(le), cumulative))
            buckets.append(("+Inf", cumulative + series.buckets[-1]))
            durations.add_metric([env, service, version], buckets, series.duration_sum)
        yield requests
        yield durations
        errors = CounterMetricFamily(
            "juanie_gateway_upstream_errors",
            "Upstream failures: refused or reset connections, timeouts, responses cut short.",
            labels=["env", "service", "reason"],
        )
        for (env, service, reason), count in sorted(self._upstream_errors.items()):
            errors.add_metric([env, service, reason], count)
        yield errors
        yield GaugeMetricFamily(
            "juanie_gateway_inflight_requests", "Requests being proxied right now.", value=self._inflight
        )


def exposition(collector: GatewayCollector) -> bytes:
    """The Prometheus text format for one collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)
