"""Alert rules: the state machine with `for`, templates, log rules, configuration errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from juanie.observe.alerts import template
from juanie.observe.alerts.config import RuleConfigError, rules_from_config
from juanie.observe.alerts.defaults import default_rules
from juanie.observe.alerts.rules import AlertRule, LogLine, LogRule, RuleError, count_log_lines, evaluate
from juanie.observe.matchers import parse_matchers

Answer = Sequence[tuple[Mapping[str, str], float]]


class Scripted:
    """A query function whose answer the test sets between rounds."""

    def __init__(self) -> None:
        self.answer: Answer = []
        self.calls: list[tuple[str, float]] = []

    def __call__(self, expr: str, at: float) -> Answer:
        self.calls.append((expr, at))
        return self.answer


RULE = AlertRule(
    "HighErrorRate",
    "sum by (env, service) (rate(x_total[1m])) > 0.05",
    for_seconds=60,
    labels={"team": "shop"},
    annotations={"summary": "{{ $labels.service }} fails {{ $value | humanizePercentage }}"},
    severity="P1",
)


def test_pending_then_firing_after_for_then_resolved_then_dropped() -> None:
    query = Scripted()
    query.answer = [({"env": "dev", "service": "pay"}, 0.25)]
    state, moves = evaluate([RULE], query, 1000.0)
    assert [(m.previous, m.current) for m in moves] == [("inactive", "pending")]
    (alert,) = state.alerts.values()
    assert alert.labels == {
        "env": "dev",
        "service": "pay",
        "team": "shop",
        "alertname": "HighErrorRate",
        "severity": "P1",
    }
    assert alert.annotations == {"summary": "pay fails 25%"}
    assert state.notifiable() == []  # pending alerts are not sent

    state, moves = evaluate([RULE], query, 1059.0, state)
    assert moves == [] and state.by_state("pending")  # 59 s < for
    state, moves = evaluate([RULE], query, 1060.0, state)
    assert [(m.previous, m.current) for m in moves] == [("pending", "firing")]
    (sent,) = state.notifiable()
    assert sent.starts_at == 1000.0 and sent.ends_at is None

    query.answer = []
    state, moves = evaluate([RULE], query, 1120.0, state)
    assert [(m.previous, m.current) for m in moves] == [("firing", "resolved")]
    (sent,) = state.notifiable()
    assert sent.ends_at == 1120.0 and sent.resolved(1120.0)
    state, _ = evaluate([RULE], query, 1120.0 + 899, state)
    assert len(state.alerts) == 1
    state, _ = evaluate([RULE], query, 1120.0 + 900, state)
    assert state.alerts == {}


def test_pending_that_clears_never_fires() -> None:
    query = Scripted()
    query.answer = [({"service": "a"}, 1.0)]
    state, _ = evaluate([RULE], query, 0.0)
    query.answer = []
    state, moves = evaluate([RULE], query, 30.0, state)
    assert [(m.previous, m.current) for m in moves] == [("pending", "inactive")] and state.alerts == {}


def test_zero_for_fires_at_once_and_a_resolved_alert_can_return() -> None:
    rule = AlertRule("Down", "up == 0", severity="P0")
    query = Scripted()
    query.answer = [({"__name__": "up", "job": "a"}, 0.0)]
    state, moves = evaluate([rule], query, 0.0)
    assert [(m.previous, m.current) for m in moves] == [("inactive", "firing")]
    assert "__name__" not in next(iter(state.alerts.values())).labels
    query.answer = []
    state, _ = evaluate([rule], query, 10.0, state)
    query.answer = [({"job": "a"}, 0.0)]
    state, moves = evaluate([rule], query, 20.0, state)
    assert [(m.previous, m.current) for m in moves] == [("resolved", "firing")]
    assert next(iter(state.alerts.values())).active_at == 20.0


def test_a_failing_query_keeps_alerts_and_records_the_error() -> None:
    query = Scripted()
    query.answer = [({"service": "a"}, 1.0)]
    state, _ = evaluate([RULE], query, 0.0)

    def broken(expr: str, at: float) -> Answer:
        raise ConnectionError("prometheus unreachable")

    state, moves = evaluate([RULE], broken, 100.0, state)
    assert moves == [] and len(state.alerts) == 1
    assert state.rule_errors == {"HighErrorRate": "ConnectionError: prometheus unreachable"}


def test_templates_render_values_and_reject_unknown_actions() -> None:
    labels = {"service": "pay", "env": "prod"}
    assert template.render("{{ $labels.service }}/{{ $labels.nope }}", labels, 1.0) == "pay/"
    assert template.render("{{ $value }}", {}, 3.0) == "3"
    assert template.render('{{ $value | printf "%.2f" }}', {}, 0.12345) == "0.12"
    assert template.render("{{ $value | humanize }}", {}, 1_500_000) == "1.5M"
    assert template.render("{{ $value | humanizeDuration }}", {}, 3725) == "1h 2m 5s"
    assert template.render('{{ $labels["env"] }}', labels, 0) == "prod"
    with pytest.raises(template.TemplateError, match="unknown variable"):
        template.render("{{ .Labels.service }}", labels, 0)
    with pytest.raises(template.TemplateError, match="unknown filter"):
        template.render("{{ $value | exec }}", labels, 0)
    with pytest.raises(RuleError, match="annotation summary"):
        AlertRule("X", "up", annotations={"summary": "{{ $value | nope }}"})


def test_rule_definitions_are_validated() -> None:
    with pytest.raises(RuleError, match="severity must be one of P0, P1, P2, P3"):
        AlertRule("X", "up", severity="critical")
    with pytest.raises(RuleError, match="expected '\\)'"):
        AlertRule("X", "rate(up[5m]")
    with pytest.raises(RuleError, match="not a scalar"):
        AlertRule("X", "1 > bool 0")
    with pytest.raises(RuleError, match="alert name"):
        AlertRule("bad name", "up")


def test_log_rule_counts_matching_lines_per_minute() -> None:
    rule = LogRule("TooManyErrors", "ERROR", threshold=2, window=60, selector=tuple(parse_matchers('env="prod"')))
    lines = [LogLine(100 + i, {"env": "prod", "service": "pay"}, f"ERROR boom {i}") for i in range(3)]
    lines += [LogLine(105, {"env": "prod", "service": "pay"}, "INFO fine")]
    lines += [LogLine(106, {"env": "dev", "service": "pay"}, "ERROR elsewhere")]
    lines += [LogLine(20, {"env": "prod", "service": "pay"}, "ERROR too old")]
    counts = count_log_lines(lines, rule, 90, 150)
    assert counts == [({"env": "prod", "service": "pay"}, 3)]

    _, moves = evaluate([rule], Scripted(), 150.0, count_fn=lambda r, s, e: count_log_lines(lines, r, s, e))
    assert [(m.current, m.value) for m in moves] == [("firing", 3.0)]
    quiet, _ = evaluate([rule], Scripted(), 150.0, count_fn=lambda r, s, e: [({"service": "pay"}, 2)])
    assert quiet.alerts == {}  # 2 per minute is not more than 2


def test_rules_from_config_and_located_errors() -> None:
    rules = rules_from_config(
        [
            {"alert": "Slow", "expr": "up == 0", "for": "2m", "severity": "P0", "labels": {"team": "web"}},
            {"alert": "Errors", "log": {"match": "ERROR", "threshold": 10, "window": "5m", "selector": 'service="a"'}},
        ]
    )
    assert isinstance(rules[0], AlertRule) and rules[0].for_seconds == 120 and rules[0].severity == "P0"
    assert isinstance(rules[1], LogRule) and rules[1].window == 300 and rules[1].selector[0].value == "a"
    cases = [
        ([{"alert": "A", "expr": "up", "for": "soon"}], "alerts[0].for: expected a duration"),
        ([{"alert": "A"}], "alerts[0]: give exactly one of 'expr'"),
        ([{"alert": "A", "expr": "up"}, {"expr": "up"}], "alerts[1].alert: required"),
        ([{"alert": "A", "expr": "up", "sevrity": "P1"}], "unknown key(s) sevrity"),
        ([{"alert": "A", "log": {"match": "x", "threshold": "many"}}], "alerts[0].log.threshold"),
        ([{"alert": "A", "expr": "rate(up)"}], "alerts[0]: alert A: invalid query"),
    ]
    for items, message in cases:
        with pytest.raises(RuleConfigError) as info:
            rules_from_config(items)
        assert message in str(info.value)


def test_default_rules_parse_and_cover_the_platform_signals() -> None:
    rules = default_rules()
    assert {r.name for r in rules} >= {"HighErrorRate", "HighLatency", "ServiceDown", "HighCPU", "HighMemory"}
    assert all(r.severity in ("P0", "P1", "P2", "P3") for r in rules)
    assert any("juanie_gateway_requests_total" in r.expr for r in rules)


def test_matchers_given_as_words_keep_spaces_and_commas_inside_quotes() -> None:
    """A silence's matchers typed as one line (amtool style): only whitespace outside quotes separates them."""
    from juanie.observe.matchers import parse_matchers, split_words

    words = split_words('alertname="High Error" service="a,b"  env=~"dev|staging"')
    assert words == ['alertname="High Error"', 'service="a,b"', 'env=~"dev|staging"']
    parsed = [m for w in words for m in parse_matchers(w)]
    assert [(m.name, m.value) for m in parsed] == [("alertname", "High Error"), ("service", "a,b"),
                                                   ("env", "dev|staging")]  # fmt: skip
    assert split_words('a="x \\" y" b=1') == ['a="x \\" y"', "b=1"]
