"""Value types of the metric store: a sample going in, a series coming out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

LabelKey = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, LabelKey]

COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")


def label_key(labels: Mapping[str, str]) -> LabelKey:
    """Labels as a sorted tuple: the identity of a series within one metric name."""
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def series_key(name: str, labels: Mapping[str, str]) -> SeriesKey:
    return (name, label_key(labels))


def looks_like_counter(name: str) -> bool:
    """Prometheus naming conventions tell counters apart when no type was declared."""
    return name.endswith(COUNTER_SUFFIXES)


@dataclass(frozen=True, slots=True)
class Sample:
    """One observation: ``ts`` in seconds since the epoch."""

    name: str
    labels: Mapping[str, str]
    value: float
    ts: float


@dataclass(slots=True)
class Series:
    """The points of one series in a time window, oldest first.

    ``minimums``/``maximums`` are set only where a gauge was downsampled; elsewhere they equal ``values``.
    """

    name: str
    labels: dict[str, str]
    timestamps: np.ndarray
    values: np.ndarray
    minimums: np.ndarray | None = field(default=None)
    maximums: np.ndarray | None = field(default=None)

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    def points(self) -> list[tuple[float, float]]:
        return list(zip(self.timestamps.tolist(), self.values.tolist(), strict=True))
