"""Read-through cache for product lookups: Redis when ``REDIS_URL`` is given, an in-process TTL map otherwise.

When Redis is configured but stops answering, lookups fall back to the in-process cache and the service logs
the degradation once (and the recovery once) instead of failing requests: a cache is an optimisation, never a
reason for a 500.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from microshop.config import redact_url
from microshop.logs import log_fields
from microshop.metrics import ServiceMetrics


class TTLCache:
    """A bounded, least-recently-used map whose entries expire ``ttl`` seconds after being set.

    The clock is injectable so expiry can be tested without waiting.
    """

    def __init__(self, ttl: float, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get(self, key: str) -> Any | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if self._clock() >= expires:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    def set(self, key: str, value: Any) -> None:
        if self.ttl <= 0:
            return
        self._data[key] = (self._clock() + self.ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)


class ProductCache:
    """The cache the product service reads through; counts hits and misses per backend."""

    def __init__(
        self,
        *,
        redis_url: str,
        prefix: str,
        ttl: float,
        metrics: ServiceMetrics,
        logger: logging.Logger,
    ) -> None:
        self.memory = TTLCache(ttl)
        self.ttl = ttl
        self.prefix = prefix
        self.metrics = metrics
        self.logger = logger
        self.redis_url = redis_url
        self._redis: Any = None
        self._redis_down = False
        if redis_url:
            import redis.asyncio as redis_asyncio  # only imported when Redis is configured

            self._redis = redis_asyncio.Redis.from_url(
                redis_url, socket_connect_timeout=2, socket_timeout=2, decode_responses=True
            )
            logger.info("product cache uses redis at %s", redact_url(redis_url))
        else:
            logger.info("REDIS_URL is not set; product cache is in-process only (per replica, %ss TTL)", ttl)

    @property
    def backend(self) -> str:
        return "redis" if self._redis is not None and not self._redis_down else "memory"

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def _mark(self, up: bool, exc: BaseException | None = None) -> None:
        self.metrics.dependency_up.labels(self.metrics.service, "redis").set(1 if up else 0)
        if not up and not self._redis_down:
            self.logger.warning(
                "redis is unreachable (%s); falling back to the in-process cache",
                str(exc)[:200] if exc else "unknown error",
                extra=log_fields(dependency="redis"),
            )
        elif up and self._redis_down:
            self.logger.info("redis is reachable again; product cache uses redis")
        self._redis_down = not up

    async def get(self, key: str) -> Any | None:
        value: Any | None = None
        backend = "memory"
        if self._redis is not None:
            try:
                raw = await self._redis.get(self._key(key))
                self._mark(True)
                backend = "redis"
                value = json.loads(raw) if raw is not None else None
            except Exception as exc:
                self._mark(False, exc)
                value = self.memory.get(key)
        else:
            value = self.memory.get(key)
        self.metrics.cache_lookups.labels(self.metrics.service, backend, "hit" if value is not None else "miss").inc()
        return value

    async def set(self, key: str, value: Any) -> None:
        if self._redis is not None:
            try:
                if self.ttl > 0:
                    await self._redis.set(self._key(key), json.dumps(value), px=int(self.ttl * 1000))
                self._mark(True)
                return
            except Exception as exc:
                self._mark(False, exc)
        self.memory.set(key, value)

    async def ping(self) -> bool:
        """True when Redis answers (or is not configured); readiness does not depend on it."""
        if self._redis is None:
            return True
        try:
            await self._redis.ping()
            self._mark(True)
            return True
        except Exception as exc:
            self._mark(False, exc)
            return False

    async def close(self) -> None:
        if self._redis is not None:
            try:
                await self._redis.aclose()
            except Exception:
                pass
