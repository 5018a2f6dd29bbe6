"""In front of `POST /api/hooks/git`: refused deliveries are counted, rate-limited and summarised, never one event each.

- Every delivery takes a token from the bucket of its (project, client address) first; an accepted delivery gives it
  back, so only refusals drain the bucket. An empty bucket is answered 429 with `Retry-After` before the body is
  read or a secret looked up, so a flood of forged deliveries costs the server almost nothing.
- Every refusal counts in `juanie_webhook_rejected_total{reason}`, `reason` from a fixed set
  (`telemetry.WEBHOOK_REJECT_REASONS`).
- A project's timeline gets at most one `webhook.rejected` event a minute: the counts by reason since the previous
  one. Refusals naming no existing project are only counted.

The buckets live in this server's memory: with several servers, each limits what reaches it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi.responses import JSONResponse
from sqlalchemy import select

from juanie.api.errors import error_response
from juanie.domain.ratelimit import Digest, Summary, TokenBuckets
from juanie.store.db import Database
from juanie.store.events import record
from juanie.store.models import Project
from juanie.telemetry import WEBHOOK_REJECT_REASONS, ServerMetrics

SUMMARY_INTERVAL = 60.0


@dataclass(frozen=True)
class Refusal:
    response: JSONResponse
    summary: Summary | None  # due on the project's timeline: `WebhookGuard.settle` writes it
    message: str
    client: str


class WebhookGuard:
    def __init__(
        self,
        db: Database,
        metrics: ServerMetrics,
        *,
        burst: int,
        per_minute: float,
        summary_interval: float = SUMMARY_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.db, self.metrics, self.clock = db, metrics, clock
        self._buckets: TokenBuckets[tuple[str, str]] = TokenBuckets(per_minute / 60.0, burst)
        self._digest = Digest(summary_interval)
        self._lock = threading.Lock()  # deliveries are handled on several threads

    def admit(self, project: str | None, client: str) -> Refusal | None:
        """Take this delivery's token, or refuse it (429) if the (project, client) bucket is empty."""
        with self._lock:
            wait = self._buckets.take((project or "", client), self.clock())
        if not wait:
            return None
        seconds = max(1, math.ceil(wait))
        return self.refuse(
            "rate_limited",
            f"too many refused deliveries from {client or 'this client'} for this project; retry in {seconds} s",
            project,
            client,
            retry_after=seconds,
        )

    def accepted(self, project: str | None, client: str) -> None:
        """The delivery was not refused: its token goes back."""
        with self._lock:
            self._buckets.give_back((project or "", client), self.clock())

    def refuse(
        self,
        reason: str,
        message: str,
        project: str | None,
        client: str,
        *,
        retry_after: int | None = None,
        response: JSONResponse | None = None,
    ) -> Refusal:
        """Count a refusal and build its answer: `response` if given, else 401 with the reason, or 429 when
        rate-limited. The delivery's token stays taken."""
        if reason not in WEBHOOK_REJECT_REASONS:
            raise ValueError(f"unknown webhook refusal reason {reason!r}")
        self.metrics.webhook_rejected.labels(reason).inc()
        with self._lock:
            summary = self._digest.add(project or "", reason, self.clock())
        if response is None and retry_after is not None:
            response = error_response(429, "rate_limited", f"webhook refused: {message}",
                                      headers={"Retry-After": str(retry_after)}, reason=reason)
        elif response is None:
            response = error_response(401, "unauthorized", f"webhook refused: {message}",
                                      headers={"WWW-Authenticate": 'Signature realm="juanie"'}, reason=reason)
        return Refusal(response, summary, message, client)

    def settle(self, refusal: Refusal) -> JSONResponse:
        """Write the refusal's summary if one is due (blocking: call it from a thread), and return its answer."""
        summary = refusal.summary
        if summary is None:
            return refusal.response
        with self.db.session() as s:
            project = summary.key or None
            if project is not None and s.scalar(select(Project.id).where(Project.name == project)) is None:
                return refusal.response  # no such project: the metric has counted it, no timeline to write to
            since = datetime.now(UTC) - timedelta(seconds=summary.until - summary.since)
            record(s, actor="webhook", kind="webhook.rejected", subject=f"project/{project or '?'}", project=project,
                   data={"reason": refusal.message, "rejected": summary.total, "reasons": summary.counts,
                         "since": since.isoformat(), "client": refusal.client})
        return refusal.response
