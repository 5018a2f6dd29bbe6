"""The default alert rules every project gets, and how a file's `alerts:` list changes them."""

from __future__ import annotations

from .operations import AlertRule

DEFAULT_ALERTS: tuple[AlertRule, ...] = (
    AlertRule(name="ServiceDown", severity="P0", for_="1m", summary="{service} in {env} is down"),
    AlertRule(
        name="HighErrorRate",
        severity="P1",
        for_="5m",
        threshold=5,
        summary="{service} in {env} fails over 5%",
    ),
    AlertRule(
        name="HighLatency",
        severity="P2",
        for_="10m",
        threshold=2,
        summary="{service} in {env} p95 latency over 2s",
    ),
    AlertRule(
        name="HighCPU", severity="P2", for_="15m", threshold=80, summary="{service} in {env} CPU over 80%"
    ),
    AlertRule(
        name="HighMemory",
        severity="P2",
        for_="15m",
        threshold=90,
        summary="{service} in {env} memory over 90%",
    ),
    AlertRule(
        name="FrequentRestarts",
        severity="P1",
        for_="0s",
        threshold=5,
        summary="{service} in {env} restarted more than 5 times in 1h",
    ),
)
"""Thresholds: error rate in percent, p95 latency in seconds, CPU and memory in percent of the limit,
restarts per hour."""

DEFAULT_NAMES: frozenset[str] = frozenset(rule.name for rule in DEFAULT_ALERTS)


def effective_alerts(overrides: list[AlertRule]) -> list[AlertRule]:
    """Merge a file's alerts over the defaults: fields set on a same-named entry win; disabled ones drop."""
    by_name = {rule.name: rule for rule in overrides}
    result: list[AlertRule] = []
    for default in DEFAULT_ALERTS:
        override = by_name.get(default.name)
        rule = default
        if override is not None:
            changed = {f: getattr(override, f) for f in override.model_fields_set if f != "name"}
            rule = default.model_copy(update=changed)
        if rule.enabled:
            result.append(rule)
    for rule in overrides:
        if rule.name not in DEFAULT_NAMES and rule.enabled:
            result.append(rule if rule.severity else rule.model_copy(update={"severity": "P2"}))
    return result
