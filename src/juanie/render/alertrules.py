"""Prometheus rule files: the project's alert rules, and SLO recording plus multi-window burn-rate alerts.

Burn-rate alerts follow the Google SRE workbook: page when the error budget burns 14.4x over 1h (and 5m) or 6x
over 6h (and 30m); open a ticket at 3x over 1d (and 2h) or 1x over 3d (and 6h). The short window makes
the alert
stop soon after the problem does.
"""

from __future__ import annotations

from typing import Any

from juanie.spec import ProjectSpec, duration_seconds

from .promql import default_expr, error_ratio, latency_quantile, number

_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
_PAGE = (("1h", "5m", 14.4), ("6h", "30m", 6.0))
_TICKET = (("1d", "2h", 3.0), ("3d", "6h", 1.0))
_BURN_ALERTS = (("SLOErrorBudgetBurnFast", _PAGE, "P1"), ("SLOErrorBudgetBurnSlow", _TICKET, "P3"))


def _template(text: str) -> str:
    return text.replace("{service}", "{{ $labels.service }}").replace("{env}", "{{ $labels.env }}")


def _labels(spec: ProjectSpec, severity: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    labels = {"severity": severity, "project": spec.name}
    if spec.project.team:
        labels["team"] = spec.project.team
    return labels | (extra or {})


def alert_rules(spec: ProjectSpec) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for rule in spec.alert_rules():
        expr = rule.expr or default_expr(spec, rule.name, rule.threshold)
        annotations = {"summary": _template(rule.summary or rule.name)}
        if rule.description:
            annotations["description"] = _template(rule.description)
        if rule.runbook:
            annotations["runbook_url"] = rule.runbook
        entry: dict[str, Any] = {"alert": rule.name, "expr": expr}
        if rule.for_ and duration_seconds(rule.for_) > 0:
            entry["for"] = rule.for_
        entry["labels"] = _labels(spec, rule.severity or "P2", rule.labels)
        entry["annotations"] = annotations
        rules.append(entry)
    return {"groups": [{"name": f"{spec.name}.alerts", "rules": rules}]}


def _burn(service: str, pairs: tuple[tuple[str, str, float], ...], budget: float) -> str:
    parts = []
    for long, short, factor in pairs:
        limit = number(factor * budget)
        parts.append(
            f'(juanie:slo_errors:ratio_rate{long}{{service="{service}"}} > {limit}'
            f' and juanie:slo_errors:ratio_rate{short}{{service="{service}"}} > {limit})'
        )
    return " or ".join(parts)


def slo_rules(spec: ProjectSpec) -> dict[str, Any]:
    records = [{"record": f"juanie:slo_errors:ratio_rate{w}", "expr": error_ratio(spec, w)} for w in _WINDOWS]
    groups: list[dict[str, Any]] = [{"name": f"{spec.name}.slo.records", "rules": records}]
    for service in spec.services:
        slo = spec.slo_for(service)
        budget = (100 - slo.availability) / 100
        rules: list[dict[str, Any]] = []
        target = f"{number(slo.availability)}% availability over {slo.window}"
        for name, pairs, severity in _BURN_ALERTS:
            rules.append(
                {
                    "alert": name,
                    "expr": _burn(service, pairs, budget),
                    "labels": _labels(spec, severity, {"service": service, "slo": "availability"}),
                    "annotations": {
                        "summary": f"{service} in {{{{ $labels.env }}}} burns its error budget ({target})"
                    },
                }
            )
        for percentile, limit in slo.latency.targets():
            rules.append(
                {
                    "alert": f"SLOLatencyP{percentile}",
                    "expr": f"{latency_quantile(service, percentile)} > {number(duration_seconds(limit))}",
                    "for": "10m",
                    "labels": _labels(spec, "P2", {"service": service, "slo": "latency"}),
                    "annotations": {
                        "summary": f"{service} in {{{{ $labels.env }}}} p{percentile} latency over {limit}"
                    },
                }
            )
        groups.append({"name": f"{spec.name}.slo.{service}", "rules": rules})
    return {"groups": groups}
