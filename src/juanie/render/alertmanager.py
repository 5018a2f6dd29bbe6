"""Alertmanager configuration: one route and receiver per severity, P0 fastest and loudest.

P0 pages within seconds and repeats hourly; P3 waits and repeats daily. A P0 on a service silences the lesser
alerts of the same service and environment (inhibition), so the person paged sees the cause, not the noise.
"""

from __future__ import annotations

from typing import Any

from juanie.spec import ProjectSpec

_TIMING = {
    "P0": ("10s", "1m", "1h"),
    "P1": ("30s", "5m", "2h"),
    "P2": ("1m", "5m", "6h"),
    "P3": ("5m", "30m", "24h"),
}


def alertmanager_config(spec: ProjectSpec) -> dict[str, Any]:
    routes = []
    receivers = []
    for severity, (wait, interval, repeat) in _TIMING.items():
        name = f"{spec.name}-{severity.lower()}"
        routes.append(
            {
                "receiver": name,
                "matchers": [f'severity="{severity}"'],
                "group_wait": wait,
                "group_interval": interval,
                "repeat_interval": repeat,
            }
        )
        receivers.append(
            {"name": name, "webhook_configs": [{"url": spec.alerting.webhook, "send_resolved": True}]}
        )
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": f"{spec.name}-p3",
            "group_by": list(spec.alerting.group_by),
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "12h",
            "routes": routes,
        },
        "receivers": receivers,
        "inhibit_rules": [
            {
                "source_matchers": ['severity="P0"'],
                "target_matchers": ['severity=~"P1|P2|P3"'],
                "equal": ["env", "service"],
            }
        ],
    }
