"""A Grafana dashboard per project: the golden signals and resources, per service and version.

Versions are a legend dimension so that during a canary the new and the stable version sit side by side.
"""

from __future__ import annotations

import json
from typing import Any

from juanie.spec import ProjectSpec

from .promql import DURATION, REQUESTS

_SEL = 'env=~"$env", service=~"$service"'
_NS = 'namespace=~"$namespace", container=~"$service"'


def _panel(pid: int, title: str, unit: str, targets: list[tuple[str, str]], x: int, y: int) -> dict[str, Any]:
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def _variable(name: str, query: str, label: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "query": {"query": query, "refId": name},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "current": {"text": "All", "value": "$__all"},
    }


def dashboard(spec: ProjectSpec) -> dict[str, Any]:
    by = "sum by (service, version)"
    latency = [
        (
            f"histogram_quantile({q}, sum by (service, version, le) (rate({DURATION}{{{_SEL}}}[5m])))",
            f"p{p} {{{{service}}}} {{{{version}}}}",
        )
        for q, p in (("0.5", 50), ("0.95", 95), ("0.99", 99))
    ]
    panels = [
        _panel(
            1,
            "Request rate",
            "reqps",
            [(f"{by} (rate({REQUESTS}{{{_SEL}}}[5m]))", "{{service}} {{version}}")],
            0,
            0,
        ),
        _panel(
            2,
            "Error rate",
            "percentunit",
            [
                (
                    f'{by} (rate({REQUESTS}{{{_SEL}, code=~"5.."}}[5m]))'
                    f" / {by} (rate({REQUESTS}{{{_SEL}}}[5m]))",
                    "{{service}} {{version}}",
                )
            ],
            12,
            0,
        ),
        _panel(3, "Latency p50 / p95 / p99", "s", latency, 0, 8),
        _panel(
            4,
            "CPU (cores)",
            "short",
            [(f"sum by (container) (rate(container_cpu_usage_seconds_total{{{_NS}}}[5m]))", "{{container}}")],
            12,
            8,
        ),
        _panel(
            5,
            "Memory",
            "bytes",
            [(f"sum by (container) (container_memory_working_set_bytes{{{_NS}}})", "{{container}}")],
            0,
            16,
        ),
        _panel(
            6,
            "Restarts (1h)",
            "short",
            [
                (
                    f"sum by (container) (increase(kube_pod_container_status_restarts_total{{{_NS}}}[1h]))",
                    "{{container}}",
                )
            ],
            12,
            16,
        ),
    ]
    namespaces = "|".join(env.namespace or "" for env in spec.environments.values())
    return {
        "uid": f"juanie-{spec.name}"[:40],
        "title": f"{spec.name} — golden signals",
        "tags": ["juanie", spec.name],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
                _variable("env", f"label_values({REQUESTS}, env)", "Environment"),
                _variable(
                    "service",
                    f'label_values({REQUESTS}{{service=~"{"|".join(spec.services)}"}}, service)',
                    "Service",
                ),
                {
                    "name": "namespace",
                    "type": "custom",
                    "query": ",".join(namespaces.split("|")),
                    "includeAll": True,
                    "multi": True,
                    "current": {"text": "All", "value": "$__all"},
                },
            ]
        },
        "panels": panels,
    }


def dashboard_json(spec: ProjectSpec) -> str:
    return json.dumps(dashboard(spec), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
