"""The embedded time-series store: raw points for a day, rollups for a month, bounded series count.

Juanie runs on one laptop without Prometheus, so the gateway, the local engine and scrapes write here and queries
and alert rules read from here. Retention is enforced by ``compact(now)`` (called on a timer by its owner), which
moves raw points past ``retention_raw`` into ``rollup_step`` buckets and drops rollups past ``retention_rollup``.
One writer and many readers may share it: every public method takes the lock for its own duration.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from juanie.observe.matchers import Matcher, matches_all
from juanie.observe.metrics.buffers import RawBuffer, RollupBuffer, downsample
from juanie.observe.metrics.model import LabelKey, Sample, Series, label_key, looks_like_counter

_SNAPSHOT_FORMAT = "juanie-metrics-v1"
_KINDS = ("counter", "gauge")
_SERIES_OVERHEAD = 400  # dict entries, label strings and object headers per series, measured roughly


class SeriesLimitError(RuntimeError):
    """Raised when a new series would exceed ``max_series``: a label with unbounded values is the usual cause."""


class SnapshotError(ValueError):
    """A snapshot file that is missing, truncated or not written by this store."""


class _SeriesData:
    __slots__ = ("counter", "labels", "name", "raw", "rollup")

    def __init__(self, name: str, labels: dict[str, str], counter: bool) -> None:
        self.name = name
        self.labels = labels
        self.counter = counter
        self.raw = RawBuffer()
        self.rollup = RollupBuffer()


class MetricStore:
    """In-memory series keyed by metric name + sorted labels; see the module docstring for the retention model."""

    def __init__(
        self,
        retention_raw: float = 24 * 3600,
        rollup_step: float = 300,
        retention_rollup: float = 30 * 24 * 3600,
        max_series: int = 100_000,
    ) -> None:
        if rollup_step <= 0 or retention_raw <= 0 or retention_rollup <= 0:
            raise ValueError("retention_raw, rollup_step and retention_rollup must be positive seconds")
        if max_series < 1:
            raise ValueError(f"max_series must be at least 1, got {max_series}")
        self.retention_raw = float(retention_raw)
        self.rollup_step = float(rollup_step)
        self.retention_rollup = float(retention_rollup)
        self.max_series = max_series
        self.dropped_samples = 0
        self._series: dict[str, dict[LabelKey, _SeriesData]] = {}
        # postings: name -> (label, value) -> series keys; lets `label="value"` selectors skip a full scan
        self._postings: dict[str, dict[tuple[str, str], set[LabelKey]]] = {}
        self._count = 0
        self._kinds: dict[str, bool] = {}
        self._lock = threading.Lock()

    # -- writing -------------------------------------------------------------------------------------------
    def set_type(self, name: str, kind: str) -> None:
        """Declare ``name`` a ``counter`` or ``gauge`` (decides how it is downsampled); else the name decides."""
        if kind not in _KINDS:
            raise ValueError(f"metric type for {name!r} must be 'counter' or 'gauge', got {kind!r}")
        with self._lock:
            self._kinds[name] = kind == "counter"

    def append(self, name: str, labels: Mapping[str, str], value: float, ts: float) -> bool:
        """Add one point. Returns False (and counts it in ``dropped_samples``) when it is not newer than the last."""
        with self._lock:
            return self._append(name, labels, float(value), float(ts))

    def append_many(self, samples: Iterable[Sample]) -> int:
        """Add many points under one lock; returns how many were accepted."""
        accepted = 0
        with self._lock:
            for s in samples:
                accepted += self._append(s.name, s.labels, float(s.value), float(s.ts))
        return accepted

    def _append(self, name: str, labels: Mapping[str, str], value: float, ts: float) -> bool:
        by_labels = self._series.get(name)
        if by_labels is None:
            by_labels = self._series[name] = {}
        key = label_key(labels)
        data = by_labels.get(key)
        if data is None:
            if self._count >= self.max_series:
                raise SeriesLimitError(
                    f"metric store is full: {self.max_series} series; refusing new series {name}{dict(key)}. "
                    "Look for a label with unbounded values (ids, paths) or raise max_series."
                )
            counter = self._kinds.get(name)
            is_counter = looks_like_counter(name) if counter is None else counter
            data = by_labels[key] = _SeriesData(name, dict(key), is_counter)
            self._index(name, key)
            self._count += 1
        if ts <= data.raw.last_ts or (data.raw.n == 0 and data.rollup.n and ts <= data.rollup.ts[-1]):
            self.dropped_samples += 1
            return False
        data.raw.append(ts, value)
        return True

    # -- reading -------------------------------------------------------------------------------------------
    def select(
        self,
        name: str | None,
        matchers: Sequence[Matcher] = (),
        start: float = -math.inf,
        end: float = math.inf,
    ) -> list[Series]:
        """Series of ``name`` (or of any name, filtered by a ``__name__`` matcher) with points in [start, end]."""
        with self._lock:
            names = [name] if name is not None else list(self._series)
            out: list[Series] = []
            for metric in names:
                for data in self._candidates(metric, matchers):
                    if not matches_all(matchers, {**data.labels, "__name__": metric}):
                        continue
                    series = _read(data, start, end)
                    if len(series):
                        out.append(series)
            return out

    def _index(self, name: str, key: LabelKey) -> None:
        postings = self._postings.setdefault(name, {})
        for pair in key:
            postings.setdefault(pair, set()).add(key)

    def _unindex(self, name: str, key: LabelKey) -> None:
        postings = self._postings.get(name, {})
        for pair in key:
            keys = postings.get(pair)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del postings[pair]

    def _candidates(self, name: str, matchers: Sequence[Matcher]) -> list[_SeriesData]:
        by_labels = self._series.get(name, {})
        equal = [(m.name, m.value) for m in matchers if m.op == "=" and m.value and m.name != "__name__"]
        if not equal:
            return list(by_labels.values())
        postings = self._postings.get(name, {})
        sets = sorted((postings.get(pair, set()) for pair in equal), key=len)
        keys = set.intersection(*sets) if len(sets) > 1 else sets[0]
        return [by_labels[k] for k in keys]

    def names(self) -> list[str]:
        with self._lock:
            return sorted(n for n, by_labels in self._series.items() if by_labels)

    def series_count(self) -> int:
        return self._count

    def memory_bytes(self) -> int:
        """Bytes held by point buffers plus an estimate of per-series bookkeeping."""
        with self._lock:
            total = 0
            for by_labels in self._series.values():
                for data in by_labels.values():
                    total += data.raw.nbytes() + data.rollup.nbytes() + _SERIES_OVERHEAD
                    total += sum(len(k) + len(v) for k, v in data.labels.items())
            return total

    # -- retention -----------------------------------------------------------------------------------------
    def compact(self, now: float) -> None:
        """Downsample raw points older than ``retention_raw`` and drop what is older than ``retention_rollup``.

        The raw cut-off is aligned down to ``rollup_step`` so a rollup bucket is only ever built from complete
        data and never split across two compactions.
        """
        raw_cutoff = math.floor((now - self.retention_raw) / self.rollup_step) * self.rollup_step
        rollup_cutoff = now - self.retention_rollup
        with self._lock:
            for by_labels in self._series.values():
                for key in list(by_labels):
                    data = by_labels[key]
                    raw_ts = data.raw.ts[: data.raw.n]
                    index = int(np.searchsorted(raw_ts, raw_cutoff, side="left"))
                    if index:
                        data.rollup.extend(
                            *downsample(raw_ts[:index], data.raw.values[:index], self.rollup_step, data.counter)
                        )
                        data.raw.drop_before(index)
                    data.rollup.drop_before_ts(rollup_cutoff)
                    if data.raw.n == 0 and data.rollup.n == 0:
                        del by_labels[key]
                        self._unindex(data.name, key)
                        self._count -= 1
            self._series = {n: s for n, s in self._series.items() if s}

    # -- persistence ---------------------------------------------------------------------------------------
    def snapshot(self, path: str | os.PathLike[str]) -> None:
        """Write every point to ``path`` atomically (temp file + rename), so a crash leaves the old snapshot."""
        target = Path(path)
        with self._lock:
            meta = []
            cols: dict[str, list[np.ndarray]] = {k: [] for k in ("raw_ts", "raw_v", "r_ts", "r_v", "r_min", "r_max")}
            for name, by_labels in self._series.items():
                for data in by_labels.values():
                    n = data.raw.n
                    meta.append([name, data.labels, data.counter, n, data.rollup.n])
                    cols["raw_ts"].append(data.raw.ts[:n])
                    cols["raw_v"].append(data.raw.values[:n])
                    cols["r_ts"].append(data.rollup.ts)
                    cols["r_v"].append(data.rollup.values)
                    cols["r_min"].append(data.rollup.minimums)
                    cols["r_max"].append(data.rollup.maximums)
            header = {"format": _SNAPSHOT_FORMAT, "series": meta, "kinds": self._kinds}
            arrays = {k: np.concatenate(v) if v else np.empty(0) for k, v in cols.items()}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(buffer.getvalue())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, path: str | os.PathLike[str]) -> MetricStore:
        """Replace this store's contents with the snapshot at ``path``; returns self."""
        try:
            with np.load(Path(path), allow_pickle=False) as npz:
                header = json.loads(bytes(npz["header"]).decode())
                arrays = {k: npz[k] for k in ("raw_ts", "raw_v", "r_ts", "r_v", "r_min", "r_max")}
        except FileNotFoundError:
            raise SnapshotError(f"metric snapshot {os.fspath(path)!r} does not exist") from None
        except (OSError, ValueError, KeyError) as exc:
            raise SnapshotError(f"metric snapshot {os.fspath(path)!r} is unreadable: {exc}") from None
        if not isinstance(header, dict) or header.get("format") != _SNAPSHOT_FORMAT:
            raise SnapshotError(f"metric snapshot {os.fspath(path)!r} is not a {_SNAPSHOT_FORMAT} file")
        series: dict[str, dict[LabelKey, _SeriesData]] = {}
        raw_at = roll_at = 0
        for name, labels, counter, raw_n, roll_n in header["series"]:
            data = _SeriesData(name, dict(labels), bool(counter))
            data.raw = RawBuffer.from_arrays(
                arrays["raw_ts"][raw_at : raw_at + raw_n], arrays["raw_v"][raw_at : raw_at + raw_n]
            )
            sl = slice(roll_at, roll_at + roll_n)
            data.rollup.extend(arrays["r_ts"][sl], arrays["r_v"][sl], arrays["r_min"][sl], arrays["r_max"][sl])
            raw_at += raw_n
            roll_at += roll_n
            series.setdefault(name, {})[label_key(data.labels)] = data
        with self._lock:
            self._series = series
            self._postings = {}
            for name, by_labels in series.items():
                for key in by_labels:
                    self._index(name, key)
            self._count = sum(len(s) for s in series.values())
            self._kinds = {str(k): bool(v) for k, v in header.get("kinds", {}).items()}
        return self


def _read(data: _SeriesData, start: float, end: float) -> Series:
    r_ts, r_v, r_min, r_max = data.rollup.window(start, end)
    ts, values = data.raw.window(start, end)
    if r_ts.shape[0] == 0:
        return Series(data.name, dict(data.labels), ts, values)
    return Series(
        data.name,
        dict(data.labels),
        np.concatenate([r_ts, ts]),
        np.concatenate([r_v, values]),
        np.concatenate([r_min, values]),
        np.concatenate([r_max, values]),
    )
