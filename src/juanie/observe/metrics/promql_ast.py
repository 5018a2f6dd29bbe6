"""The syntax tree of Juanie's PromQL subset; produced by ``promql.parse`` and walked by ``query``."""

from __future__ import annotations

from dataclasses import dataclass

from juanie.observe.matchers import Matcher

SCALAR, VECTOR, MATRIX = "scalar", "vector", "matrix"

AGGREGATIONS = ("sum", "avg", "min", "max", "count")
# name -> (argument types, result type)
FUNCTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "rate": ((MATRIX,), VECTOR),
    "irate": ((MATRIX,), VECTOR),
    "increase": ((MATRIX,), VECTOR),
    "delta": ((MATRIX,), VECTOR),
    "avg_over_time": ((MATRIX,), VECTOR),
    "min_over_time": ((MATRIX,), VECTOR),
    "max_over_time": ((MATRIX,), VECTOR),
    "sum_over_time": ((MATRIX,), VECTOR),
    "count_over_time": ((MATRIX,), VECTOR),
    "last_over_time": ((MATRIX,), VECTOR),
    "histogram_quantile": ((SCALAR, VECTOR), VECTOR),
    "abs": ((VECTOR,), VECTOR),
    "ceil": ((VECTOR,), VECTOR),
    "floor": ((VECTOR,), VECTOR),
    "clamp_min": ((VECTOR, SCALAR), VECTOR),
    "clamp_max": ((VECTOR, SCALAR), VECTOR),
    "vector": ((SCALAR,), VECTOR),
    "time": ((), SCALAR),
}
ARITHMETIC = ("+", "-", "*", "/", "%", "^")
COMPARISON = ("==", "!=", ">", "<", ">=", "<=")


@dataclass(frozen=True)
class NumberLiteral:
    value: float
    type: str = SCALAR


@dataclass(frozen=True)
class VectorSelector:
    name: str | None
    matchers: tuple[Matcher, ...]
    type: str = VECTOR


@dataclass(frozen=True)
class MatrixSelector:
    selector: VectorSelector
    range: float
    type: str = MATRIX


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Node, ...]
    type: str = VECTOR


@dataclass(frozen=True)
class Aggregate:
    op: str
    expr: Node
    grouping: tuple[str, ...] = ()
    without: bool = False
    type: str = VECTOR


@dataclass(frozen=True)
class Binary:
    op: str
    lhs: Node
    rhs: Node
    return_bool: bool = False
    on: tuple[str, ...] | None = None
    ignoring: tuple[str, ...] = ()
    type: str = VECTOR


@dataclass(frozen=True)
class Unary:
    op: str
    expr: Node
    type: str = VECTOR


Node = NumberLiteral | VectorSelector | MatrixSelector | Call | Aggregate | Binary | Unary
