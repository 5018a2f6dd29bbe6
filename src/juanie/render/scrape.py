"""Prometheus configuration: scrape the services (found through Juanie) and Juanie; alert via Alertmanager."""

from __future__ import annotations

from typing import Any

from juanie.spec import ProjectSpec

ALERTMANAGER = "alertmanager.monitoring.svc:9093"
JUANIE_TARGET = "juanie.juanie-system.svc:8080"


def sd_url(spec: ProjectSpec) -> str:
    """Juanie's Prometheus HTTP SD endpoint for the project: targets labelled env, service, version."""
    return f"http://{JUANIE_TARGET}/api/sd/{spec.name}"


def prometheus_config(spec: ProjectSpec, rule_files: list[str]) -> dict[str, Any]:
    """Targets come from Juanie's HTTP service discovery, which knows every instance on either engine
    (local processes and Kubernetes pods) with its env, service and version labels."""
    return {
        "global": {
            "scrape_interval": "15s",
            "evaluation_interval": "15s",
            "external_labels": {"project": spec.name},
        },
        "rule_files": rule_files,
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [ALERTMANAGER]}]}]},
        "scrape_configs": [
            {
                "job_name": "juanie",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [JUANIE_TARGET]}],
            },
            {
                "job_name": spec.name,
                "http_sd_configs": [{"url": sd_url(spec), "refresh_interval": "30s"}],
                "relabel_configs": [
                    {
                        "source_labels": ["__meta_juanie_metrics_path"],
                        "regex": "(.+)",
                        "target_label": "__metrics_path__",
                    }
                ],
            },
        ],
    }
