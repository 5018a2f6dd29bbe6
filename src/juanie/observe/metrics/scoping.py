"""Label enforcement, as prom-label-proxy does it: a query made for a project sees that project's series only.

``enforce_label(expr, "project", "shop")`` parses ``expr``, adds ``project="shop"`` to every vector selector and
prints the tree again; the embedded engine and a project's Prometheus are both sent the rewritten text. The enforced
matcher is ANDed with the query's own, so ``{project!="shop"}``, ``{project=~".*"}`` or ``{project="other"}`` can
narrow the answer (to nothing) but never widen it. ``ScopedBackend`` puts every query of one project through it:
the API, the CLI (through the API), the web pages and the project's alert rules all get their backend that way.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from juanie.observe.matchers import Matcher
from juanie.observe.metrics.prometheus_backend import QueryBackend
from juanie.observe.metrics.promql import parse
from juanie.observe.metrics.promql_ast import (
    Aggregate,
    Binary,
    Call,
    MatrixSelector,
    Node,
    NumberLiteral,
    Unary,
    VectorSelector,
)
from juanie.observe.metrics.promql_print import to_promql
from juanie.observe.metrics.result import QueryResult

PROJECT_LABEL = "project"


def scope_node(node: Node, enforced: Matcher) -> Node:
    """``node`` with ``enforced`` added to every vector selector in it (those of range vectors included)."""
    if isinstance(node, VectorSelector):
        return node if enforced in node.matchers else replace(node, matchers=(*node.matchers, enforced))
    if isinstance(node, MatrixSelector):
        return replace(node, selector=scope_node(node.selector, enforced))
    if isinstance(node, Call):
        return replace(node, args=tuple(scope_node(arg, enforced) for arg in node.args))
    if isinstance(node, Aggregate | Unary):
        return replace(node, expr=scope_node(node.expr, enforced))
    if isinstance(node, Binary):
        return replace(node, lhs=scope_node(node.lhs, enforced), rhs=scope_node(node.rhs, enforced))
    if isinstance(node, NumberLiteral):
        return node
    raise TypeError(f"cannot scope an unknown PromQL node: {node!r}")  # fail closed on a node added later


@lru_cache(maxsize=4096)
def enforce_label(expr: str, name: str, value: str) -> str:
    """``expr`` limited to series with ``name="value"``; raises ``PromQLError`` as ``parse`` does."""
    return to_promql(scope_node(parse(expr), Matcher(name, "=", value)))


class ScopedBackend:
    """A backend whose every query is first limited to one project's series (``project="<name>"``)."""

    def __init__(self, backend: QueryBackend, project: str, label: str = PROJECT_LABEL) -> None:
        self.backend = backend
        self.project = project
        self.label = label

    def query(self, expr: str, at: float) -> QueryResult:
        return self.backend.query(enforce_label(expr, self.label, self.project), at)

    def query_range(self, expr: str, start: float, end: float, step: float) -> QueryResult:
        return self.backend.query_range(enforce_label(expr, self.label, self.project), start, end, step)
