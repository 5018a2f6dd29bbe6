"""A syntax tree back to PromQL text that both Juanie's parser and a real Prometheus read as the same tree (pure).

Every operand that is not an atom is parenthesised, so precedence and associativity never depend on the reader
(Prometheus reads ``-1 ^ 2`` as ``-(1 ^ 2)``; the printed ``(-1) ^ 2`` leaves no doubt). ``parse(to_promql(node))``
equals ``node``.
"""

from __future__ import annotations

import math

from juanie.observe.durations import format_duration
from juanie.observe.matchers import Matcher
from juanie.observe.metrics.promql_ast import (
    AGGREGATIONS,
    FUNCTIONS,
    Aggregate,
    Binary,
    Call,
    MatrixSelector,
    Node,
    NumberLiteral,
    Unary,
    VectorSelector,
)

# Words a metric name may not be written as, because a reader would take them for syntax.
_KEYWORDS = frozenset(
    {*AGGREGATIONS, *FUNCTIONS, "by", "without", "on", "ignoring", "bool", "and", "or", "unless", "offset",
     "group_left", "group_right", "inf", "nan"}
)  # fmt: skip
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def to_promql(node: Node) -> str:
    if isinstance(node, NumberLiteral):
        return _number(node.value)
    if isinstance(node, VectorSelector):
        return _selector(node)
    if isinstance(node, MatrixSelector):
        return f"{_selector(node.selector)}[{format_duration(node.range)}]"
    if isinstance(node, Call):
        return f"{node.func}({', '.join(to_promql(arg) for arg in node.args)})"
    if isinstance(node, Aggregate):
        grouping = ""
        if node.without or node.grouping:
            grouping = f" {'without' if node.without else 'by'} ({', '.join(node.grouping)})"
        return f"{node.op}{grouping} ({to_promql(node.expr)})"
    if isinstance(node, Unary):
        return f"-{_operand(node.expr)}"
    if isinstance(node, Binary):
        modifiers = " bool" if node.return_bool else ""
        if node.on is not None:
            modifiers += f" on ({', '.join(node.on)})"
        elif node.ignoring:
            modifiers += f" ignoring ({', '.join(node.ignoring)})"
        return f"{_operand(node.lhs)} {node.op}{modifiers} {_operand(node.rhs)}"
    raise TypeError(f"not a PromQL syntax tree node: {node!r}")


def _operand(node: Node) -> str:
    text = to_promql(node)
    atom = isinstance(node, VectorSelector | MatrixSelector | Call | Aggregate) or (
        isinstance(node, NumberLiteral) and not text.startswith("-")
    )
    return text if atom else f"({text})"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _selector(node: VectorSelector) -> str:
    matchers = list(node.matchers)
    name = node.name or ""
    if name in _KEYWORDS:
        matchers.insert(0, Matcher("__name__", "=", name))
        name = ""
    return name + "{" + ",".join(f'{m.name}{m.op}"{_quote(m.value)}"' for m in matchers) + "}"


def _quote(value: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in value)
