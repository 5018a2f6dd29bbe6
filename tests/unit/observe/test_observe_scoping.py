"""Label enforcement (prom-label-proxy's): every selector of a project's query gets `project="<name>"`, ANDed with the
query's own matchers, and the printed query means the same tree to Juanie's parser and to Prometheus."""

from __future__ import annotations

import pytest

from juanie.observe.matchers import Matcher
from juanie.observe.metrics.promql import PromQLError, parse
from juanie.observe.metrics.promql_ast import Aggregate, Binary, Call, MatrixSelector, Node, Unary, VectorSelector
from juanie.observe.metrics.promql_print import to_promql
from juanie.observe.metrics.query import QueryEngine
from juanie.observe.metrics.result import QueryResult
from juanie.observe.metrics.scoping import ScopedBackend, enforce_label
from juanie.observe.metrics.store import MetricStore

EXPRESSIONS = [
    "up",
    '{project="b"}',
    '{project=~".+"}',
    'up{project!="a"}',
    "sum by (project) (up)",
    'sum by (env, service) (rate(juanie_gateway_requests_total{code=~"5.."}[5m])) '
    "/ sum by (env, service) (rate(juanie_gateway_requests_total[5m])) > 0.05",
    "histogram_quantile(0.99, sum by (le) (rate(x_bucket[1m30s])))",
    "max(x) without (instance)",
    "sum without () (x)",
    "x > bool on (a) y",
    "x - ignoring (code) y",
    "-1 ^ 2",
    "2 ^ 3 ^ 2",
    "-(x) * 2",
    "1e-05 * x + 0.5",
    "clamp_min(x, -Inf)",
    "vector(1) + time()",
    'sum{a="b"}',
    '{__name__=~"juanie_.*"}',
    'x{a="q\\"\\\\n\\t"}',
    "count_over_time(up[250ms])",
]


def _selectors(node: Node) -> list[VectorSelector]:
    if isinstance(node, VectorSelector):
        return [node]
    if isinstance(node, MatrixSelector):
        return [node.selector]
    if isinstance(node, Call):
        return [s for arg in node.args for s in _selectors(arg)]
    if isinstance(node, Aggregate | Unary):
        return _selectors(node.expr)
    if isinstance(node, Binary):
        return _selectors(node.lhs) + _selectors(node.rhs)
    return []


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_every_selector_is_limited_to_the_project_and_keeps_its_own_matchers(expr: str) -> None:
    before = _selectors(parse(expr))
    after = _selectors(parse(enforce_label(expr, "project", "a")))
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        assert Matcher("project", "=", "a") in new.matchers
        assert set(old.matchers) <= set(new.matchers) and new.name == old.name


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_printing_gives_back_the_same_tree(expr: str) -> None:
    tree = parse(expr)
    assert parse(to_promql(tree)) == tree
    scoped = enforce_label(expr, "project", "a")
    assert enforce_label(scoped, "project", "a") == scoped  # enforcing twice changes nothing


def test_the_rewritten_text_is_readable() -> None:
    assert enforce_label("up", "project", "shop") == 'up{project="shop"}'
    assert enforce_label('sum by (project) (rate(x{project!="shop"}[5m]))', "project", "shop") == (
        'sum by (project) (rate(x{project!="shop",project="shop"}[5m]))'
    )


def _store() -> MetricStore:
    store = MetricStore()
    for project in ("a", "b"):
        for i in range(5):
            labels = {"project": project, "env": f"{project}-dev", "service": "api", "job": project}
            store.append("up", labels, 1.0, 1000.0 + i)
            store.append("http_requests_total", labels, 10.0 * i, 1000.0 + i)
    store.append("up", {"job": "juanie-gateway", "instance": "127.0.0.1:1"}, 1.0, 1004.0)  # nobody's
    return store


@pytest.mark.parametrize(
    "expr",
    ["up", '{project="b"}', '{project=~".+"}', 'up{project!="a"}', '{__name__=~".+"}', "sum by (project) (up)",
     "count by (project, job) (up)", "sum by (project) (rate(http_requests_total[5s]))", "up + ignoring (job) up"],
)  # fmt: skip
def test_a_scoped_query_sees_only_its_projects_series(expr: str) -> None:
    backend = ScopedBackend(QueryEngine(_store()), "a")
    for result in (backend.query(expr, 1004.0), backend.query_range(expr, 1002.0, 1004.0, 1.0)):
        seen = {item["metric"].get("project") for item in result.result}
        assert seen <= {"a"}, (expr, result.result)
    everything = QueryEngine(_store()).query("count(up)", 1004.0).samples()[0][1]
    assert everything == 3 and ScopedBackend(QueryEngine(_store()), "a").query("count(up)", 1004.0).samples() == [
        ({}, 1.0)
    ]


class _Recording:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def query(self, expr: str, at: float) -> QueryResult:
        self.sent.append(expr)
        return QueryResult("vector", [])

    def query_range(self, expr: str, start: float, end: float, step: float) -> QueryResult:
        self.sent.append(expr)
        return QueryResult("matrix", [])


def test_a_prometheus_behind_the_scope_is_sent_the_rewritten_query() -> None:
    prometheus = _Recording()
    backend = ScopedBackend(prometheus, "a")
    backend.query('{project=~".+"}', 1.0)
    backend.query_range("sum by (project) (up)", 1.0, 2.0, 1.0)
    assert prometheus.sent == ['{project=~".+",project="a"}', 'sum by (project) (up{project="a"})']


def test_a_query_that_does_not_parse_is_refused_before_any_backend_sees_it() -> None:
    prometheus = _Recording()
    with pytest.raises(PromQLError, match="position"):
        ScopedBackend(prometheus, "a").query("sum((", 1.0)
    assert prometheus.sent == []
