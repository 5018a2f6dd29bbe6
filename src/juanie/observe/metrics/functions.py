"""Pure numeric kernels of the query engine, vectorised over evaluation steps.

Each takes a series' points and the step timestamps and returns one value per step (NaN where there is no answer),
following Prometheus's definitions so embedded answers agree with a real Prometheus: ``rate``/``increase`` use its
counter-reset correction and extrapolation, ``histogram_quantile`` its bucket interpolation.
Ranges are closed, ``[t - window, t]``, as in Prometheus 2.x.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from juanie.observe.metrics.model import Series

LabelSet = dict[str, str]
VectorValue = tuple[LabelSet, np.ndarray]  # one labelled value per step


def _window_bounds(ts: np.ndarray, steps: np.ndarray, window: float) -> tuple[np.ndarray, np.ndarray]:
    lo = np.searchsorted(ts, steps - window, side="left")
    hi = np.searchsorted(ts, steps, side="right")
    return lo, hi


def instant(series: Series, steps: np.ndarray, lookback: float = 300.0) -> np.ndarray:
    """The latest value at or before each step, if it is no older than ``lookback``."""
    ts = series.timestamps
    idx = np.searchsorted(ts, steps, side="right") - 1
    safe = np.clip(idx, 0, max(len(ts) - 1, 0))
    if len(ts) == 0:
        return np.full(steps.shape, np.nan)
    ok = (idx >= 0) & (steps - ts[safe] <= lookback)
    return np.where(ok, series.values[safe], np.nan)


def _extrapolated(series: Series, steps: np.ndarray, window: float, counter: bool, per_second: bool) -> np.ndarray:
    ts, values = series.timestamps, series.values
    out = np.full(steps.shape, np.nan)
    if len(ts) < 2:
        return out
    lo, hi = _window_bounds(ts, steps, window)
    count = hi - lo
    ok = count >= 2
    if not ok.any():
        return out
    lo, last = lo[ok], hi[ok] - 1
    if counter:
        drops = np.concatenate([[0.0], np.where(values[1:] < values[:-1], values[:-1], 0.0)])
        corrected = values + np.cumsum(drops)
        result = corrected[last] - corrected[lo]
    else:
        result = values[last] - values[lo]
    first_t, last_t = ts[lo], ts[last]
    range_start, range_end = steps[ok] - window, steps[ok]
    to_start = first_t - range_start
    to_end = range_end - last_t
    sampled = last_t - first_t
    average = sampled / (count[ok] - 1)
    if counter:
        first_v = values[lo]
        with np.errstate(divide="ignore", invalid="ignore"):
            to_zero = np.where((result > 0) & (first_v >= 0), sampled * (first_v / result), np.inf)
        to_start = np.minimum(to_start, to_zero)
    threshold = average * 1.1
    interval = sampled + np.where(to_start < threshold, to_start, average / 2)
    interval = interval + np.where(to_end < threshold, to_end, average / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        result = result * (interval / sampled)
    if per_second:
        result = result / window
    out[ok] = result
    return out


def rate(series: Series, window: float, steps: np.ndarray) -> np.ndarray:
    """Per-second increase of a counter over ``window`` at each step (Prometheus ``rate``)."""
    return _extrapolated(series, steps, window, counter=True, per_second=True)


def increase(series: Series, window: float, steps: np.ndarray) -> np.ndarray:
    """Increase of a counter over ``window`` at each step (Prometheus ``increase``)."""
    return _extrapolated(series, steps, window, counter=True, per_second=False)


def delta(series: Series, window: float, steps: np.ndarray) -> np.ndarray:
    return _extrapolated(series, steps, window, counter=False, per_second=False)


def irate(series: Series, window: float, steps: np.ndarray) -> np.ndarray:
    """Per-second rate between the last two samples in the window."""
    ts, values = series.timestamps, series.values
    out = np.full(steps.shape, np.nan)
    lo, hi = _window_bounds(ts, steps, window)
    ok = (hi - lo) >= 2
    last, prev = hi[ok] - 1, hi[ok] - 2
    diff = np.where(values[last] < values[prev], values[last], values[last] - values[prev])
    out[ok] = diff / (ts[last] - ts[prev])
    return out


def over_time(series: Series, window: float, steps: np.ndarray, how: str) -> np.ndarray:
    """``avg|sum|count|min|max|last``_over_time: a reduction of the raw points in each window."""
    ts, values = series.timestamps, series.values
    out = np.full(steps.shape, np.nan)
    lo, hi = _window_bounds(ts, steps, window)
    count = hi - lo
    ok = count > 0
    if how in ("avg", "sum", "count"):
        sums = np.concatenate([[0.0], np.cumsum(values)])
        if how == "count":
            out[ok] = count[ok]
        elif how == "sum":
            out[ok] = (sums[hi] - sums[lo])[ok]
        else:
            out[ok] = ((sums[hi] - sums[lo])[ok]) / count[ok]
    elif how == "last":
        out[ok] = values[hi[ok] - 1]
    else:
        source = series.minimums if how == "min" else series.maximums
        source = values if source is None else source
        reduce = np.min if how == "min" else np.max
        for i in np.flatnonzero(ok):
            out[i] = reduce(source[lo[i] : hi[i]])
    return out


def group_labels(labels: Mapping[str, str], grouping: Sequence[str], without: bool) -> LabelSet:
    """The labels an aggregation keeps: only ``grouping`` (``by``) or all but it (``without``); never the name."""
    if without:
        drop = set(grouping) | {"__name__"}
        return {k: v for k, v in labels.items() if k not in drop}
    return {k: labels[k] for k in grouping if k in labels and labels[k] != ""}


def aggregate(
    vector: Sequence[VectorValue], op: str, grouping: Sequence[str] = (), without: bool = False
) -> list[VectorValue]:
    """``sum/avg/min/max/count by|without (...)`` over a vector; steps where a group has no value stay NaN."""
    groups: dict[tuple[tuple[str, str], ...], tuple[LabelSet, list[np.ndarray]]] = {}
    for labels, values in vector:
        kept = group_labels(labels, grouping, without)
        groups.setdefault(tuple(sorted(kept.items())), (kept, []))[1].append(values)
    out: list[VectorValue] = []
    for kept, members in groups.values():
        stack = np.vstack(members)
        present = ~np.isnan(stack)
        count = present.sum(axis=0)
        if op in ("sum", "avg"):
            total = np.where(present, stack, 0.0).sum(axis=0)
            value = total if op == "sum" else total / np.maximum(count, 1)
        elif op == "count":
            value = count.astype(np.float64)
        elif op == "min":
            value = np.fmin.reduce(stack, axis=0)
        elif op == "max":
            value = np.fmax.reduce(stack, axis=0)
        else:
            raise ValueError(f"unknown aggregation {op!r}")
        out.append((kept, np.where(count > 0, value, np.nan)))
    return out


def sum_by(vector: Sequence[VectorValue], labels: Sequence[str]) -> list[VectorValue]:
    return aggregate(vector, "sum", labels)


def avg_by(vector: Sequence[VectorValue], labels: Sequence[str]) -> list[VectorValue]:
    return aggregate(vector, "avg", labels)


def ratio(numerator: Sequence[VectorValue], denominator: Sequence[VectorValue]) -> list[VectorValue]:
    """One-to-one ``a / b`` on identical label sets (the name ignored), as PromQL's ``/`` between vectors."""
    index = {_signature(labels): values for labels, values in denominator}
    out: list[VectorValue] = []
    for labels, values in numerator:
        other = index.get(_signature(labels))
        if other is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                out.append(({k: v for k, v in labels.items() if k != "__name__"}, values / other))
    return out


def _signature(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))


def histogram_quantile(q: float, buckets: Sequence[VectorValue]) -> list[VectorValue]:
    """Prometheus's ``histogram_quantile`` over cumulative ``le`` buckets, per label set without ``le``."""
    groups: dict[tuple[tuple[str, str], ...], tuple[LabelSet, list[tuple[float, np.ndarray]]]] = {}
    for labels, values in buckets:
        if "le" not in labels:
            continue
        try:
            upper = float(labels["le"].replace("+Inf", "inf"))
        except ValueError:
            continue
        kept = {k: v for k, v in labels.items() if k not in ("le", "__name__")}
        groups.setdefault(tuple(sorted(kept.items())), (kept, []))[1].append((upper, values))
    out: list[VectorValue] = []
    for kept, members in groups.values():
        members.sort(key=lambda m: m[0])
        uppers = np.array([m[0] for m in members])
        counts = np.vstack([m[1] for m in members])
        result = np.array([_bucket_quantile(q, uppers, counts[:, i]) for i in range(counts.shape[1])])
        out.append((kept, result))
    return out


def _bucket_quantile(q: float, uppers: np.ndarray, counts: np.ndarray) -> float:
    present = ~np.isnan(counts)
    if not present.any():
        return float("nan")
    if q < 0:
        return float("-inf")
    if q > 1:
        return float("inf")
    uppers, counts = uppers[present], counts[present]
    if len(uppers) < 2 or not np.isinf(uppers[-1]):
        return float("nan")
    counts = np.maximum.accumulate(counts)  # Prometheus's ensureMonotonic
    observations = counts[-1]
    if observations == 0 or np.isnan(q):
        return float("nan")
    rank = q * observations
    b = int(np.searchsorted(counts, rank, side="left"))
    if b >= len(uppers) - 1:
        return float(uppers[-2])
    if b == 0 and uppers[0] <= 0:
        return float(uppers[0])
    start, end, count = 0.0, float(uppers[b]), float(counts[b])
    if b > 0:
        start = float(uppers[b - 1])
        count -= float(counts[b - 1])
        rank -= float(counts[b - 1])
    return start + (end - start) * (rank / count) if count else start
