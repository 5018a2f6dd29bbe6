"""The PromQL-subset parser: accepted shapes and clear errors."""

from __future__ import annotations

import pytest

from juanie.observe.metrics.promql import PromQLError, parse, tokenize
from juanie.observe.metrics.promql_ast import Aggregate, Binary, Call, MatrixSelector, NumberLiteral, VectorSelector


def test_parses_grouped_rate_with_matchers() -> None:
    node = parse('sum by (service, version) (rate(juanie_gateway_requests_total{env="shop-dev",code=~"5.."}[1m]))')
    assert isinstance(node, Aggregate) and node.op == "sum" and node.grouping == ("service", "version")
    call = node.expr
    assert isinstance(call, Call) and call.func == "rate"
    matrix = call.args[0]
    assert isinstance(matrix, MatrixSelector) and matrix.range == 60.0
    assert matrix.selector.name == "juanie_gateway_requests_total"
    assert [(m.name, m.op, m.value) for m in matrix.selector.matchers] == [
        ("env", "=", "shop-dev"),
        ("code", "=~", "5.."),
    ]


def test_grouping_after_the_aggregation_body() -> None:
    node = parse("max(x) without (instance)")
    assert isinstance(node, Aggregate) and node.without and node.grouping == ("instance",)


def test_histogram_quantile_and_precedence() -> None:
    node = parse("histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m]))) > 1 + 2 * 3")
    assert isinstance(node, Binary) and node.op == ">"
    rhs = node.rhs
    assert isinstance(rhs, Binary) and rhs.op == "+" and isinstance(rhs.rhs, Binary) and rhs.rhs.op == "*"
    assert isinstance(node.lhs, Call) and node.lhs.func == "histogram_quantile"


def test_power_is_right_associative_and_unary_minus_folds() -> None:
    node = parse("2 ^ 3 ^ 2")
    assert isinstance(node, Binary) and isinstance(node.rhs, Binary)
    assert parse("-5") == NumberLiteral(-5.0)


def test_name_only_in_braces_and_composite_durations() -> None:
    node = parse('{__name__="up", job="api"}')
    assert isinstance(node, VectorSelector) and node.name == "up" and len(node.matchers) == 1
    call = parse("avg_over_time(x[1h30m])")
    assert isinstance(call, Call) and isinstance(call.args[0], MatrixSelector) and call.args[0].range == 5400


def test_tokenizer_reports_unknown_characters() -> None:
    with pytest.raises(PromQLError, match="position 2: unexpected character '@'"):
        tokenize("x @ 5")


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("rate(x[5m]", "expected ')' to close rate("),
        ("rate(x)", "argument 1 must be a matrix"),
        ("foo(x)", "unknown or unsupported function 'foo'"),
        ("x[5m]", "range vector cannot be the result"),
        ("1 > 2", "must use 'bool'"),
        ('x{a="1"', "expected '}' to close the label matchers"),
        ("x{a=1}", "a quoted value"),
        ('{a=~".*"}', "needs a metric name"),
        ("x and y", "set operators"),
        ("sum(x, y)", "takes one argument"),
        ("", "empty string"),
        ('x{a=~"("}', "invalid regular expression"),
        ("(x + y)[5m]", "subqueries are not supported"),
    ],
)
def test_errors_say_what_was_expected(expr: str, message: str) -> None:
    with pytest.raises(PromQLError) as info:
        parse(expr)
    assert message in str(info.value)
