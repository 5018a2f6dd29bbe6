"""Alert rules from configuration (the ``alerts:`` list of ``juanie.yaml``), with errors that name the field.

Metric rules use Prometheus's rule keys (``alert``, ``expr``, ``for``, ``labels``, ``annotations``) plus
``severity``; log rules replace ``expr`` with ``log: {match, threshold, window, selector, group_by}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from juanie.observe.alerts.rules import AlertRule, LogRule, RuleError
from juanie.observe.durations import DurationError, parse_duration
from juanie.observe.matchers import MatcherError, parse_matchers

_RULE_KEYS = {"alert", "expr", "for", "labels", "annotations", "severity", "log"}
_LOG_KEYS = {"match", "threshold", "window", "selector", "group_by"}


class RuleConfigError(ValueError):
    """A rule entry that is not valid; the message starts with its location, e.g. ``alerts[2].for``."""


def rules_from_config(items: Sequence[Any], where: str = "alerts") -> list[AlertRule | LogRule]:
    if not isinstance(items, list | tuple):
        raise RuleConfigError(f"{where}: expected a list of rules, got {type(items).__name__}")
    rules: list[AlertRule | LogRule] = []
    for index, item in enumerate(items):
        rules.append(rule_from_config(item, f"{where}[{index}]"))
    return rules


def rule_from_config(item: Any, where: str) -> AlertRule | LogRule:
    if not isinstance(item, Mapping):
        raise RuleConfigError(
            f"{where}: expected a mapping with 'alert' and 'expr' or 'log', got {type(item).__name__}"
        )
    unknown = set(item) - _RULE_KEYS
    if unknown:
        raise RuleConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; expected {', '.join(sorted(_RULE_KEYS))}"
        )
    name = _string(item, "alert", where, required=True)
    for_seconds = _duration(item.get("for", 0), f"{where}.for")
    labels = _string_map(item.get("labels", {}), f"{where}.labels")
    annotations = _string_map(item.get("annotations", {}), f"{where}.annotations")
    severity = str(item.get("severity", labels.pop("severity", "P2")))
    if ("expr" in item) == ("log" in item):
        raise RuleConfigError(f"{where}: give exactly one of 'expr' (a metric rule) or 'log' (a log rule)")
    try:
        if "expr" in item:
            expr = _string(item, "expr", where, required=True)
            return AlertRule(name, expr, for_seconds, labels, annotations, severity)
        return _log_rule(item["log"], f"{where}.log", name, for_seconds, labels, annotations, severity)
    except RuleError as exc:
        raise RuleConfigError(f"{where}: {exc}") from None


def _log_rule(
    log: Any,
    where: str,
    name: str,
    for_seconds: float,
    labels: dict[str, str],
    annotations: dict[str, str],
    severity: str,
) -> LogRule:
    if not isinstance(log, Mapping):
        raise RuleConfigError(f"{where}: expected a mapping with 'match' and 'threshold'")
    unknown = set(log) - _LOG_KEYS
    if unknown:
        raise RuleConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; expected {', '.join(sorted(_LOG_KEYS))}"
        )
    match = _string(log, "match", where, required=True)
    threshold = log.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise RuleConfigError(f"{where}.threshold: expected a number of lines per minute, got {threshold!r}")
    selector_text = log.get("selector", "")
    try:
        selector = tuple(parse_matchers(selector_text)) if selector_text else ()
    except MatcherError as exc:
        raise RuleConfigError(f"{where}.selector: {exc}") from None
    group_by = log.get("group_by", ["env", "service"])
    if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
        raise RuleConfigError(f"{where}.group_by: expected a list of label names")
    window = _duration(log.get("window", 60), f"{where}.window")
    return LogRule(
        name,
        match,
        float(threshold),
        window,
        selector,
        tuple(group_by),
        for_seconds,
        labels,
        annotations,
        severity,
    )


def _string(item: Mapping[str, Any], key: str, where: str, required: bool = False) -> str:
    value = item.get(key)
    if value is None and required:
        raise RuleConfigError(f"{where}.{key}: required")
    if not isinstance(value, str) or not value.strip():
        raise RuleConfigError(f"{where}.{key}: expected a non-empty string, got {value!r}")
    return value


def _string_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise RuleConfigError(f"{where}: expected a mapping of strings, got {type(value).__name__}")
    out: dict[str, str] = {}
    for key, text in value.items():
        if not isinstance(key, str) or not isinstance(text, str | int | float) or isinstance(text, bool):
            raise RuleConfigError(f"{where}.{key}: expected a string value, got {text!r}")
        out[key] = str(text)
    return out


def _duration(value: Any, where: str) -> float:
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise RuleConfigError(f"{where}: {exc}") from None
