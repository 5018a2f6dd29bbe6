"""Domain events published to RabbitMQ (a topic exchange), or a logged no-op when ``AMQP_URL`` is unset.

Publishing never fails the request that caused the event: an order that was paid for stays created even when
the broker is down. The outcome is counted (``events_published_total{result}``) and logged, so the gap is
visible.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from microshop.config import redact_url
from microshop.logs import current_trace_id, log_fields
from microshop.metrics import ServiceMetrics


def event_envelope(name: str, data: dict[str, Any], *, service: str, version: str, trace_id: str) -> dict[str, Any]:
    """The JSON body of an event: what happened, to what, when, and which request caused it."""
    return {
        "event": name,
        "source": service,
        "version": version,
        "time": datetime.now(tz=UTC).isoformat(timespec="milliseconds"),
        "trace_id": trace_id,
        "data": data,
    }


class EventPublisher:
    """Publish events with pika on a worker thread, keeping one connection, re-opened on failure."""

    def __init__(
        self,
        *,
        amqp_url: str,
        exchange: str,
        service: str,
        version: str,
        metrics: ServiceMetrics,
        logger: logging.Logger,
    ) -> None:
        self.amqp_url = amqp_url
        self.exchange = exchange
        self.service = service
        self.version = version
        self.metrics = metrics
        self.logger = logger
        self._lock = threading.Lock()
        self._connection: Any = None
        self._channel: Any = None
        if amqp_url:
            logger.info("events go to exchange %r at %s", exchange, redact_url(amqp_url))
        else:
            logger.info("AMQP_URL is not set; events are disabled (order.created is logged, not published)")

    @property
    def enabled(self) -> bool:
        return bool(self.amqp_url)

    def _open(self) -> None:
        import pika  # only imported when a broker is configured

        params = pika.URLParameters(self.amqp_url)
        params.socket_timeout = 3
        params.blocked_connection_timeout = 5
        params.connection_attempts = 1
        self._connection = pika.BlockingConnection(params)
        channel = self._connection.channel()
        channel.exchange_declare(exchange=self.exchange, exchange_type="topic", durable=True)
        channel.confirm_delivery()
        self._channel = channel

    def _close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                pass

    def _publish_sync(self, routing_key: str, body: bytes) -> None:
        import pika

        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._channel is None or not self._channel.is_open:
                        self._close()
                        self._open()
                    self._channel.basic_publish(
                        exchange=self.exchange,
                        routing_key=routing_key,
                        body=body,
                        properties=pika.BasicProperties(
                            content_type="application/json", delivery_mode=2, type=routing_key
                        ),
                        mandatory=False,
                    )
                    return
                except Exception:
                    self._close()
                    if attempt == 2:
                        raise

    async def publish(self, name: str, data: dict[str, Any]) -> bool:
        """Publish event ``name``; True when the broker confirmed it, False when disabled or failed."""
        if not self.enabled:
            self.metrics.events.labels(self.service, name, "disabled").inc()
            self.logger.info("event %s not published: events are disabled", name, extra=log_fields(event=name))
            return False
        envelope = event_envelope(name, data, service=self.service, version=self.version, trace_id=current_trace_id())
        try:
            await asyncio.to_thread(self._publish_sync, name, json.dumps(envelope).encode())
        except Exception as exc:
            self.metrics.events.labels(self.service, name, "failed").inc()
            self.metrics.dependency_up.labels(self.service, "amqp").set(0)
            self.logger.error(
                "could not publish %s: broker unreachable (%s)",
                name,
                str(exc)[:200] or type(exc).__name__,
                extra=log_fields(event=name, dependency="amqp"),
            )
            return False
        self.metrics.events.labels(self.service, name, "published").inc()
        self.metrics.dependency_up.labels(self.service, "amqp").set(1)
        self.logger.info("published %s", name, extra=log_fields(event=name))
        return True

    async def close(self) -> None:
        await asyncio.to_thread(self._with_lock_close)

    def _with_lock_close(self) -> None:
        with self._lock:
            self._close()
