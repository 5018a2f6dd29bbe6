"""The embedded query engine: evaluates Juanie's PromQL subset over a ``MetricStore``.

Every node evaluates to one value per step at once (numpy arrays), so a range query costs about the same as an
instant one. ``query_range`` and ``query`` answer in Prometheus's shapes (see ``result.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from juanie.observe.metrics import functions as fn
from juanie.observe.metrics.model import Series
from juanie.observe.metrics.promql import PromQLError, parse
from juanie.observe.metrics.promql_ast import (
    COMPARISON,
    SCALAR,
    Aggregate,
    Binary,
    Call,
    MatrixSelector,
    Node,
    NumberLiteral,
    Unary,
    VectorSelector,
)
from juanie.observe.metrics.result import QueryResult, format_ts, format_value
from juanie.observe.metrics.store import MetricStore

MAX_STEPS = 11_000  # Prometheus's limit on points per series in one range query

_RANGE_FUNCS: dict[str, Callable[[Series, float, np.ndarray], np.ndarray]] = {
    "rate": fn.rate,
    "increase": fn.increase,
    "delta": fn.delta,
    "irate": fn.irate,
}
_ARITH: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,
    "^": np.power,
    "==": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
}


class QueryError(ValueError):
    """A query that parsed but cannot be evaluated (bad range, many-to-many match)."""


@dataclass
class _Scalar:
    values: np.ndarray


_Vector = list[fn.VectorValue]


class QueryEngine:
    """``query_range(expr, start, end, step)`` and ``query(expr, at)`` over a store; same interface as Prometheus."""

    def __init__(self, store: MetricStore, lookback: float = 300.0) -> None:
        self.store = store
        self.lookback = lookback

    def query_range(self, expr: str, start: float, end: float, step: float) -> QueryResult:
        if step <= 0:
            raise QueryError(f"step must be a positive number of seconds, got {step}")
        if end < start:
            raise QueryError(f"end ({end}) must not be before start ({start})")
        count = math.floor((end - start) / step + 1e-9) + 1
        if count > MAX_STEPS:
            raise QueryError(
                f"range query would return {count} points per series; the limit is {MAX_STEPS}, increase the step"
            )
        steps = start + step * np.arange(count, dtype=np.float64)
        value = self._eval(parse(expr), steps)
        if isinstance(value, _Scalar):
            return QueryResult("matrix", [{"metric": {}, "values": _points(steps, value.values)}])
        result = [{"metric": labels, "values": _points(steps, values)} for labels, values in value]
        return QueryResult("matrix", sorted((r for r in result if r["values"]), key=_sort_key))

    def query(self, expr: str, at: float) -> QueryResult:
        steps = np.array([float(at)])
        value = self._eval(parse(expr), steps)
        if isinstance(value, _Scalar):
            return QueryResult("scalar", [format_ts(at), format_value(float(value.values[0]))])
        result = [
            {"metric": labels, "value": [format_ts(at), format_value(float(values[0]))]}
            for labels, values in value
            if not np.isnan(values[0])
        ]
        return QueryResult("vector", sorted(result, key=_sort_key))

    # -- evaluation ----------------------------------------------------------------------------------------
    def _eval(self, node: Node, steps: np.ndarray) -> _Scalar | _Vector:
        if isinstance(node, NumberLiteral):
            return _Scalar(np.full(steps.shape, node.value))
        if isinstance(node, VectorSelector):
            return [
                ({"__name__": s.name, **s.labels}, fn.instant(s, steps, self.lookback))
                for s in self._select(node, steps, self.lookback)
            ]
        if isinstance(node, Call):
            return self._call(node, steps)
        if isinstance(node, Aggregate):
            inner = self._eval(node.expr, steps)
            assert isinstance(inner, list)
            return fn.aggregate(inner, node.op, node.grouping, node.without)
        if isinstance(node, Unary):
            inner = self._eval(node.expr, steps)
            if isinstance(inner, _Scalar):
                return _Scalar(-inner.values)
            return [(_drop_name(labels), -values) for labels, values in inner]
        if isinstance(node, Binary):
            return self._binary(node, steps)
        raise PromQLError(f"cannot evaluate a bare range selector {node}")

    def _select(self, selector: VectorSelector, steps: np.ndarray, window: float) -> list[Series]:
        return self.store.select(selector.name, selector.matchers, float(steps[0]) - window, float(steps[-1]))

    def _call(self, node: Call, steps: np.ndarray) -> _Scalar | _Vector:
        name = node.func
        if name == "time":
            return _Scalar(steps.copy())
        if name == "vector":
            scalar = self._eval(node.args[0], steps)
            assert isinstance(scalar, _Scalar)
            return [({}, scalar.values)]
        if name == "histogram_quantile":
            q = self._eval(node.args[0], steps)
            assert isinstance(q, _Scalar)
            buckets = self._eval(node.args[1], steps)
            assert isinstance(buckets, list)
            return fn.histogram_quantile(float(q.values[0]), buckets)
        if name in _RANGE_FUNCS or name.endswith("_over_time"):
            matrix = node.args[0]
            assert isinstance(matrix, MatrixSelector)
            out: _Vector = []
            for s in self._select(matrix.selector, steps, matrix.range):
                if name in _RANGE_FUNCS:
                    values = _RANGE_FUNCS[name](s, matrix.range, steps)
                else:
                    values = fn.over_time(s, matrix.range, steps, name.removesuffix("_over_time"))
                out.append((dict(s.labels), values))
            return out
        inner = self._eval(node.args[0], steps)
        assert isinstance(inner, list)
        if name in ("clamp_min", "clamp_max"):
            bound = self._eval(node.args[1], steps)
            assert isinstance(bound, _Scalar)
            op = np.maximum if name == "clamp_min" else np.minimum
            return [(_drop_name(labels), op(values, bound.values)) for labels, values in inner]
        unary = {"abs": np.abs, "ceil": np.ceil, "floor": np.floor}[name]
        return [(_drop_name(labels), unary(values)) for labels, values in inner]

    def _binary(self, node: Binary, steps: np.ndarray) -> _Scalar | _Vector:
        lhs, rhs = self._eval(node.lhs, steps), self._eval(node.rhs, steps)
        op, comparison = _ARITH[node.op], node.op in COMPARISON
        if isinstance(lhs, _Scalar) and isinstance(rhs, _Scalar):
            with np.errstate(all="ignore"):
                return _Scalar(op(lhs.values, rhs.values).astype(np.float64))
        if isinstance(lhs, _Scalar) or isinstance(rhs, _Scalar):
            vector, scalar = (rhs, lhs) if isinstance(lhs, _Scalar) else (lhs, rhs)
            assert isinstance(vector, list) and isinstance(scalar, _Scalar)
            out: _Vector = []
            for labels, values in vector:
                a, b = (scalar.values, values) if isinstance(lhs, _Scalar) else (values, scalar.values)
                out.append(_combine(node, labels, a, b, values, op, comparison))
            return out
        assert isinstance(lhs, list) and isinstance(rhs, list)
        right: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
        for labels, values in rhs:
            sig = _match_signature(labels, node)
            if sig in right:
                raise QueryError(
                    f"many-to-many matching not allowed: right side has several series for {dict(sig)}; "
                    "aggregate it first (for example with sum by (...))"
                )
            right[sig] = values
        out = []
        seen: set[tuple[tuple[str, str], ...]] = set()
        for labels, values in lhs:
            sig = _match_signature(labels, node)
            if sig not in right:
                continue
            if sig in seen:
                raise QueryError(f"many-to-many matching not allowed: left side has several series for {dict(sig)}")
            seen.add(sig)
            combined = _combine(node, labels, values, right[sig], values, op, comparison)
            if node.on is not None:
                combined = ({k: v for k, v in combined[0].items() if k in node.on}, combined[1])
            out.append(combined)
        return out


def _combine(
    node: Binary,
    labels: dict[str, str],
    a: np.ndarray,
    b: np.ndarray,
    kept: np.ndarray,
    op: Callable[[np.ndarray, np.ndarray], np.ndarray],
    comparison: bool,
) -> fn.VectorValue:
    with np.errstate(all="ignore"):
        raw = op(a, b)
    missing = np.isnan(a) | np.isnan(b)
    if comparison and not node.return_bool:
        return labels, np.where(raw & ~missing, kept, np.nan)
    return _drop_name(labels), np.where(missing, np.nan, raw.astype(np.float64))


def _match_signature(labels: dict[str, str], node: Binary) -> tuple[tuple[str, str], ...]:
    if node.on is not None:
        return tuple(sorted((k, v) for k, v in labels.items() if k in node.on))
    drop = set(node.ignoring) | {"__name__"}
    return tuple(sorted((k, v) for k, v in labels.items() if k not in drop))


def _drop_name(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k != "__name__"}


def _points(steps: np.ndarray, values: np.ndarray) -> list[list[object]]:
    return [
        [format_ts(t), format_value(v)]
        for t, v in zip(steps.tolist(), values.tolist(), strict=True)
        if not math.isnan(v)
    ]


def _sort_key(item: dict[str, object]) -> list[tuple[str, str]]:
    metric = item["metric"]
    assert isinstance(metric, dict)
    return sorted(metric.items())


__all__ = ["MAX_STEPS", "SCALAR", "QueryEngine", "QueryError"]
