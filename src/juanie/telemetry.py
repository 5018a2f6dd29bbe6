"""The server's own Prometheus metrics, in one registry so tests and several apps in one process stay apart."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# The bounded label values of juanie_webhook_rejected_total (api/webhook_guard.py refuses with exactly these).
WEBHOOK_REJECT_REASONS = (
    "no_signature",
    "malformed_signature",
    "bad_signature",
    "replayed",
    "invalid_payload",
    "too_large",
    "rate_limited",
)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "juanie_http_requests_total",
            "API requests by route template, method and status code.",
            ["method", "route", "code"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "juanie_http_request_duration_seconds",
            "API request latency by route template.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.db_pool = Gauge(
            "juanie_db_pool_connections",
            "Database pool connections by state.",
            ["state"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "juanie_controller_queue_depth",
            "Keys waiting in a controller's work queue.",
            ["controller"],
            registry=self.registry,
        )
        self.reconciles = Counter(
            "juanie_controller_reconcile_total",
            "Reconcile calls by controller and result.",
            ["controller", "result"],
            registry=self.registry,
        )
        self.reconcile_duration = Histogram(
            "juanie_controller_reconcile_duration_seconds",
            "Time per reconcile call.",
            ["controller"],
            registry=self.registry,
        )
        self.leader = Gauge(
            "juanie_leader",
            "1 while this server holds the controller lease.",
            ["server"],
            registry=self.registry,
        )
        self.login_attempts = Counter(
            "juanie_login_attempts_total",
            "Password logins by result: succeeded, failed, or locked (refused by the lockout without a check).",
            ["result"],
            registry=self.registry,
        )
        self.webhook_rejected = Counter(
            "juanie_webhook_rejected_total",
            "Push webhook deliveries refused, by reason (rate_limited: refused by the rate limit, unchecked).",
            ["reason"],
            registry=self.registry,
        )
        for result in ("succeeded", "failed", "locked"):
            self.login_attempts.labels(result)
        for reason in WEBHOOK_REJECT_REASONS:
            self.webhook_rejected.labels(reason)
