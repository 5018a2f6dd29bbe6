"""Rate limits as values: token buckets per key, and digests that fold many occurrences into a periodic summary.

Pure: time is passed in (`now`, seconds on any monotonic clock), so every rule is tested without waiting. Memory is
bounded by `max_keys`; the least recently used key is forgotten first (for a bucket, forgetting means full again,
which costs an abuser at most one extra burst per eviction).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets(Generic[K]):
    """One bucket per key holding up to `burst` tokens, refilled at `rate` tokens a second."""

    def __init__(self, rate: float, burst: float, max_keys: int = 10_000):
        if rate <= 0 or burst < 1 or max_keys <= 0:
            raise ValueError("TokenBuckets: rate must be > 0, burst >= 1 and max_keys > 0")
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: OrderedDict[K, _Bucket] = OrderedDict()

    def _bucket(self, key: K, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + max(now - bucket.at, 0.0) * self.rate)
            bucket.at = max(bucket.at, now)
        return bucket

    def take(self, key: K, now: float) -> float:
        """Take a token: 0.0 if there was one, else the seconds until there will be (and nothing is taken)."""
        bucket = self._bucket(key, now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def give_back(self, key: K, now: float) -> None:
        """Return a token taken for something that turned out not to count."""
        bucket = self._bucket(key, now)
        bucket.tokens = min(self.burst, bucket.tokens + 1)

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(frozen=True)
class Summary:
    """What happened to one key since its previous summary: counts by reason, over `since`..`until`."""

    key: str
    counts: dict[str, int]
    since: float
    until: float

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class _Tally:
    since: float
    last_summary: float | None = None
    counts: Counter[str] = field(default_factory=Counter)


class Digest:
    """Counts occurrences per key and lets at most one `Summary` per key out every `interval` seconds.

    The first occurrence of a key is summarised at once; later ones are added up until the interval since the last
    summary has passed, and the next occurrence after that carries them all.
    """

    def __init__(self, interval: float, max_keys: int = 1_000):
        if interval <= 0 or max_keys <= 0:
            raise ValueError("Digest: interval and max_keys must be positive")
        self.interval, self.max_keys = interval, max_keys
        self._tallies: OrderedDict[str, _Tally] = OrderedDict()

    def add(self, key: str, reason: str, now: float) -> Summary | None:
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally(since=now)
            while len(self._tallies) > self.max_keys:
                self._tallies.popitem(last=False)
        self._tallies.move_to_end(key)
        tally.counts[reason] += 1
        if tally.last_summary is not None and now - tally.last_summary < self.interval:
            return None
        summary = Summary(key, dict(tally.counts), tally.since, now)
        tally.counts.clear()
        tally.since = tally.last_summary = now
        return summary

    def __len__(self) -> int:
        return len(self._tallies)
