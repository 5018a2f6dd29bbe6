"""Alert rules and their pure evaluation: inactive → pending → firing → resolved, honouring ``for``.

``evaluate(rules, query_fn, now, state)`` returns a new state and the transitions it made; it does no I/O itself
(queries and log counts come in as functions), so the same code runs against the embedded store, a real Prometheus
or a test's synthetic series, and a restart can resume from a persisted state.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from juanie.observe.alerts import template
from juanie.observe.alerts.model import SEVERITIES, Alert, fingerprint
from juanie.observe.matchers import Matcher, matches_all
from juanie.observe.metrics.promql import parse
from juanie.observe.metrics.promql_ast import SCALAR

QueryFn = Callable[[str, float], Sequence[tuple[Mapping[str, str], float]]]
INACTIVE, PENDING, FIRING, RESOLVED = "inactive", "pending", "firing", "resolved"
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


class RuleError(ValueError):
    """A rule whose definition is invalid (name, expression, severity, template)."""


def _check_common(
    name: str, for_seconds: float, severity: str, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> None:
    if not _NAME.match(name):
        raise RuleError(f"alert name {name!r} must match [a-zA-Z_][a-zA-Z0-9_]*")
    if for_seconds < 0:
        raise RuleError(f"alert {name}: 'for' must be >= 0 seconds, got {for_seconds}")
    if severity not in SEVERITIES:
        raise RuleError(f"alert {name}: severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    for where, values in (("label", labels), ("annotation", annotations)):
        for key, text in values.items():
            try:
                template.validate(text)
            except template.TemplateError as exc:
                raise RuleError(f"alert {name}: {where} {key}: {exc}") from None


@dataclass(frozen=True)
class AlertRule:
    """A PromQL-subset condition: every series the expression returns at evaluation time is an active alert."""

    name: str
    expr: str
    for_seconds: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    severity: str = "P2"

    def __post_init__(self) -> None:
        _check_common(self.name, self.for_seconds, self.severity, self.labels, self.annotations)
        try:
            node = parse(self.expr)
        except ValueError as exc:
            raise RuleError(f"alert {self.name}: {exc}") from None
        if node.type == SCALAR:
            raise RuleError(f"alert {self.name}: expression must return a vector, not a scalar: {self.expr!r}")


@dataclass(frozen=True)
class LogLine:
    ts: float
    labels: Mapping[str, str]
    text: str


@dataclass(frozen=True)
class LogRule:
    """More than ``threshold`` matching log lines per minute (counted over ``window``) in a group is an alert."""

    name: str
    match: str
    threshold: float
    window: float = 60.0
    selector: tuple[Matcher, ...] = ()
    group_by: tuple[str, ...] = ("env", "service")
    for_seconds: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    severity: str = "P2"

    def __post_init__(self) -> None:
        _check_common(self.name, self.for_seconds, self.severity, self.labels, self.annotations)
        if self.window <= 0 or self.threshold < 0:
            raise RuleError(f"alert {self.name}: window must be > 0 and threshold >= 0")
        try:
            re.compile(self.match)
        except re.error as exc:
            raise RuleError(f"alert {self.name}: invalid log pattern {self.match!r}: {exc}") from None


CountFn = Callable[[LogRule, float, float], Sequence[tuple[Mapping[str, str], int]]]


def count_log_lines(
    lines: Iterable[LogLine], rule: LogRule, start: float, end: float
) -> list[tuple[dict[str, str], int]]:
    """Pure counter for the built-in log store: lines in (start, end] matching the rule, grouped by ``group_by``."""
    pattern = re.compile(rule.match)
    counts: dict[tuple[tuple[str, str], ...], int] = {}
    for line in lines:
        if start < line.ts <= end and matches_all(rule.selector, line.labels) and pattern.search(line.text):
            key = tuple((k, line.labels.get(k, "")) for k in rule.group_by)
            counts[key] = counts.get(key, 0) + 1
    return [(dict(k), n) for k, n in counts.items()]


@dataclass(frozen=True)
class ActiveAlert:
    rule: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    state: str
    active_at: float
    value: float
    fired_at: float | None = None
    resolved_at: float | None = None

    def to_alert(self, generator_url: str = "") -> Alert:
        ends = self.resolved_at if self.state == RESOLVED else None
        return Alert(dict(self.labels), dict(self.annotations), self.active_at, ends, generator_url)


@dataclass(frozen=True)
class AlertState:
    """All active alerts keyed by (rule name, label fingerprint), plus the last error of each failing rule."""

    alerts: Mapping[tuple[str, str], ActiveAlert] = field(default_factory=dict)
    rule_errors: Mapping[str, str] = field(default_factory=dict)

    def notifiable(self) -> list[Alert]:
        """Firing and recently resolved alerts: what routing must see. Pending ones are not sent."""
        return [a.to_alert() for a in self.alerts.values() if a.state in (FIRING, RESOLVED)]

    def by_state(self, state: str) -> list[ActiveAlert]:
        return [a for a in self.alerts.values() if a.state == state]


@dataclass(frozen=True)
class Transition:
    rule: str
    labels: Mapping[str, str]
    previous: str
    current: str
    at: float
    value: float


def evaluate(
    rules: Sequence[AlertRule | LogRule],
    query_fn: QueryFn,
    now: float,
    state: AlertState | None = None,
    count_fn: CountFn | None = None,
    resolved_retention: float = 900.0,
    external_url: str = "",
) -> tuple[AlertState, list[Transition]]:
    """One evaluation round of every rule at ``now``. A rule whose query fails keeps its alerts as they were and
    has its error recorded in ``rule_errors``: a flaky backend must not resolve real alerts."""
    state = state or AlertState()
    alerts = dict(state.alerts)
    errors: dict[str, str] = {}
    transitions: list[Transition] = []
    for rule in rules:
        try:
            samples = _active_samples(rule, query_fn, count_fn, now)
        except Exception as exc:  # a backend error of any kind is reported on the rule, not raised
            errors[rule.name] = f"{type(exc).__name__}: {exc}"
            continue
        seen: set[tuple[str, str]] = set()
        for labels, value in samples:
            alert_labels = _alert_labels(rule, labels, value, external_url)
            key = (rule.name, fingerprint(alert_labels))
            if key in seen:
                errors[rule.name] = f"several series have the labels {alert_labels} after adding the rule's labels"
                continue
            seen.add(key)
            annotations = {k: template.render(v, labels, value, external_url) for k, v in rule.annotations.items()}
            alerts[key] = _step_active(rule, alerts.get(key), alert_labels, annotations, value, now, transitions)
        for key in [k for k in alerts if k[0] == rule.name and k not in seen]:
            _step_inactive(key, alerts, now, resolved_retention, transitions)
    return AlertState(alerts, errors), transitions


def _active_samples(
    rule: AlertRule | LogRule, query_fn: QueryFn, count_fn: CountFn | None, now: float
) -> list[tuple[Mapping[str, str], float]]:
    if isinstance(rule, AlertRule):
        return [(labels, float(value)) for labels, value in query_fn(rule.expr, now)]
    if count_fn is None:
        raise RuntimeError("log rule evaluated without a log source (count_fn)")
    per_minute = 60.0 / rule.window
    return [
        (labels, n * per_minute)
        for labels, n in count_fn(rule, now - rule.window, now)
        if n * per_minute > rule.threshold
    ]


def _alert_labels(rule: AlertRule | LogRule, labels: Mapping[str, str], value: float, url: str) -> dict[str, str]:
    out = {k: v for k, v in labels.items() if k != "__name__" and v != ""}
    out.update({k: template.render(v, labels, value, url) for k, v in rule.labels.items()})
    out["alertname"] = rule.name
    out["severity"] = rule.severity
    return out


def _step_active(
    rule: AlertRule | LogRule,
    current: ActiveAlert | None,
    labels: dict[str, str],
    annotations: dict[str, str],
    value: float,
    now: float,
    transitions: list[Transition],
) -> ActiveAlert:
    if current is None or current.state == RESOLVED:
        previous = INACTIVE if current is None else RESOLVED
        nxt = FIRING if rule.for_seconds == 0 else PENDING
        transitions.append(Transition(rule.name, labels, previous, nxt, now, value))
        return ActiveAlert(rule.name, labels, annotations, nxt, now, value, now if nxt == FIRING else None)
    if current.state == PENDING and now - current.active_at >= rule.for_seconds:
        transitions.append(Transition(rule.name, labels, PENDING, FIRING, now, value))
        return replace(current, state=FIRING, fired_at=now, value=value, annotations=annotations)
    return replace(current, value=value, annotations=annotations)


def _step_inactive(
    key: tuple[str, str],
    alerts: dict[tuple[str, str], ActiveAlert],
    now: float,
    retention: float,
    transitions: list[Transition],
) -> None:
    current = alerts[key]
    if current.state == PENDING:
        transitions.append(Transition(current.rule, current.labels, PENDING, INACTIVE, now, current.value))
        del alerts[key]
    elif current.state == FIRING:
        transitions.append(Transition(current.rule, current.labels, FIRING, RESOLVED, now, current.value))
        alerts[key] = replace(current, state=RESOLVED, resolved_at=now)
    elif current.resolved_at is not None and now - current.resolved_at >= retention:
        del alerts[key]
