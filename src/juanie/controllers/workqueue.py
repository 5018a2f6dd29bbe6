"""A work queue with the semantics of client-go's: a key is queued at most once, is never processed by two workers
at the same time, and comes back with a per-key exponential backoff when its reconcile fails.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Hashable


class WorkQueue:
    def __init__(self, *, base_delay: float = 0.5, max_delay: float = 300.0):
        self._queue: deque[Hashable] = deque()
        self._queued: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._dirty: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._timers: list[tuple[float, int, Hashable]] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._base, self._max = base_delay, max_delay
        self._closed = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def waiting(self) -> int:
        return len(self._timers)

    def add(self, key: Hashable) -> None:
        """Queue `key` now. If it is being processed, it is processed once more afterwards."""
        if self._closed:
            return
        if key in self._processing:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._queue.append(key)
            self._wakeup.set()

    def add_after(self, key: Hashable, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), key))
        self._wakeup.set()

    def add_rate_limited(self, key: Hashable) -> float:
        """Requeue after a failure: 0.5 s, 1 s, 2 s, ... capped; returns the delay chosen."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = min(self._base * (2**failures), self._max)
        self.add_after(key, delay)
        return delay

    def forget(self, key: Hashable) -> None:
        """Reset the backoff of `key` after a success."""
        self._failures.pop(key, None)

    def failures(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    def _promote_due(self) -> float | None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, key = heapq.heappop(self._timers)
            self.add(key)
        return self._timers[0][0] - now if self._timers else None

    async def get(self) -> Hashable:
        while True:
            next_due = self._promote_due()
            if self._queue:
                key = self._queue.popleft()
                self._queued.discard(key)
                self._processing.add(key)
                return key
            if self._closed:
                raise asyncio.CancelledError
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=next_due)
            except TimeoutError:
                pass

    def done(self, key: Hashable) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()
