"""Growable numpy column buffers for one series: raw points and downsampled rollups.

Kept apart from the store so the store reads as policy (what to keep, for how long) and this file as mechanism
(how points sit in memory). Capacity doubles on growth and is trimmed on compaction, so memory follows retention.
"""

from __future__ import annotations

import numpy as np

_MIN_CAPACITY = 16


class RawBuffer:
    """Timestamps and values, appended in time order."""

    __slots__ = ("n", "ts", "values")

    def __init__(self, capacity: int = _MIN_CAPACITY) -> None:
        self.ts = np.empty(capacity, dtype=np.float64)
        self.values = np.empty(capacity, dtype=np.float64)
        self.n = 0

    @classmethod
    def from_arrays(cls, ts: np.ndarray, values: np.ndarray) -> RawBuffer:
        buffer = cls(max(_MIN_CAPACITY, int(ts.shape[0])))
        buffer.n = int(ts.shape[0])
        buffer.ts[: buffer.n] = ts
        buffer.values[: buffer.n] = values
        return buffer

    def append(self, ts: float, value: float) -> None:
        if self.n == self.ts.shape[0]:
            self._grow(self.n * 2)
        self.ts[self.n] = ts
        self.values[self.n] = value
        self.n += 1

    def _grow(self, capacity: int) -> None:
        capacity = max(capacity, _MIN_CAPACITY)
        ts = np.empty(capacity, dtype=np.float64)
        values = np.empty(capacity, dtype=np.float64)
        ts[: self.n] = self.ts[: self.n]
        values[: self.n] = self.values[: self.n]
        self.ts, self.values = ts, values

    def drop_before(self, index: int) -> None:
        """Forget the first ``index`` points and give back spare capacity."""
        keep = self.n - index
        capacity = max(_MIN_CAPACITY, keep + keep // 4)
        ts = np.empty(capacity, dtype=np.float64)
        values = np.empty(capacity, dtype=np.float64)
        ts[:keep] = self.ts[index : self.n]
        values[:keep] = self.values[index : self.n]
        self.ts, self.values, self.n = ts, values, keep

    def window(self, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        ts = self.ts[: self.n]
        lo = int(np.searchsorted(ts, start, side="left"))
        hi = int(np.searchsorted(ts, end, side="right"))
        return ts[lo:hi].copy(), self.values[lo:hi].copy()

    @property
    def last_ts(self) -> float:
        return float(self.ts[self.n - 1]) if self.n else float("-inf")

    def nbytes(self) -> int:
        return int(self.ts.nbytes + self.values.nbytes)


class RollupBuffer:
    """One point per rollup step: the value kept (last for counters, mean for gauges) plus min and max."""

    __slots__ = ("maximums", "minimums", "ts", "values")

    def __init__(self) -> None:
        empty = np.empty(0, dtype=np.float64)
        self.ts, self.values, self.minimums, self.maximums = empty, empty, empty, empty

    @property
    def n(self) -> int:
        return int(self.ts.shape[0])

    def extend(self, ts: np.ndarray, values: np.ndarray, mins: np.ndarray, maxs: np.ndarray) -> None:
        if self.n:
            newer = ts > self.ts[-1]
            ts, values, mins, maxs = ts[newer], values[newer], mins[newer], maxs[newer]
        if ts.shape[0]:
            self.ts = np.concatenate([self.ts, ts])
            self.values = np.concatenate([self.values, values])
            self.minimums = np.concatenate([self.minimums, mins])
            self.maximums = np.concatenate([self.maximums, maxs])

    def drop_before_ts(self, cutoff: float) -> None:
        index = int(np.searchsorted(self.ts, cutoff, side="left"))
        if index:
            self.ts, self.values = self.ts[index:].copy(), self.values[index:].copy()
            self.minimums, self.maximums = self.minimums[index:].copy(), self.maximums[index:].copy()

    def window(self, start: float, end: float) -> tuple[np.ndarray, ...]:
        lo = int(np.searchsorted(self.ts, start, side="left"))
        hi = int(np.searchsorted(self.ts, end, side="right"))
        return tuple(a[lo:hi].copy() for a in (self.ts, self.values, self.minimums, self.maximums))

    def nbytes(self) -> int:
        return int(self.ts.nbytes + self.values.nbytes + self.minimums.nbytes + self.maximums.nbytes)


def downsample(
    ts: np.ndarray, values: np.ndarray, step: float, counter: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reduce raw points to one per ``step``-aligned bucket, stamped with the bucket's last sample time.

    Counters keep their last value in the bucket (so ``rate`` over rollups still sees every increase, resets
    included as long as a reset does not hide inside one bucket); gauges keep mean, min and max.
    """
    if ts.shape[0] == 0:
        empty = np.empty(0, dtype=np.float64)
        return empty, empty, empty, empty
    buckets = np.floor(ts / step)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(buckets)) + 1])
    ends = np.concatenate([starts[1:], [ts.shape[0]]]) - 1
    out_ts = ts[ends]
    mins = np.minimum.reduceat(values, starts)
    maxs = np.maximum.reduceat(values, starts)
    kept = values[ends] if counter else np.add.reduceat(values, starts) / (ends - starts + 1)
    return out_ts, kept, mins, maxs
