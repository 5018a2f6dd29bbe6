"""Prometheus metrics of one service.

Each app gets its own registry (not the process-global one) so that several apps can live in one test process
without "duplicated timeseries" errors, and so that ``/metrics`` shows exactly what this service measures.
Names follow the Prometheus conventions: base units, ``_total`` counters, bounded label values (the route
template, never the raw path).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """The metrics every microshop service exports, plus the few that only one service fills."""

    def __init__(self, service: str, version: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests served, by route template and status code.",
            ["service", "method", "path", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from receiving a request to sending the last byte of its response.",
            ["service", "method", "path"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight", "Requests being served right now.", ["service"], registry=self.registry
        )
        self.build_info = Gauge(
            "service_build_info",
            "Always 1; labels say which version runs.",
            ["service", "version"],
            registry=self.registry,
        )
        self.build_info.labels(service, version).set(1)
        self.cache_lookups = Counter(
            "cache_lookups_total",
            "Product cache lookups by result (hit or miss) and backend (redis or memory).",
            ["service", "backend", "result"],
            registry=self.registry,
        )
        self.events = Counter(
            "events_published_total",
            "Domain events handed to the message broker, by event name and result.",
            ["service", "event", "result"],
            registry=self.registry,
        )
        self.dependency_up = Gauge(
            "dependency_up",
            "1 when the last check of a dependency (database, redis, amqp) succeeded, else 0.",
            ["service", "dependency"],
            registry=self.registry,
        )

    def observe_request(self, method: str, path: str, status: int, seconds: float) -> None:
        self.requests.labels(self.service, method, path, str(status)).inc()
        self.latency.labels(self.service, method, path).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text format body and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
