"""Alertmanager's webhook payload, version 4, built from a ``Notification`` (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from juanie.observe.alerts.dispatcher import Notification
from juanie.observe.alerts.model import rfc3339


def common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """Key/value pairs present with the same value in every map (``commonLabels``/``commonAnnotations``)."""
    if not maps:
        return {}
    first = dict(maps[0])
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def alertmanager_webhook_payload(notification: Notification, external_url: str) -> dict[str, Any]:
    """Exactly the JSON an Alertmanager ``webhook_configs`` receiver posts, so existing consumers work as-is."""
    alerts = list(notification.alerts)
    return {
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": notification.truncated_alerts,
        "status": notification.status,
        "receiver": notification.receiver,
        "groupLabels": dict(notification.group_labels),
        "commonLabels": common([a.labels for a in alerts]),
        "commonAnnotations": common([a.annotations for a in alerts]),
        "externalURL": external_url,
        "alerts": [
            {
                "status": notification.alert_status(a),
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "startsAt": rfc3339(a.starts_at),
                "endsAt": rfc3339(a.ends_at if a.resolved(notification.at) else None),
                "generatorURL": a.generator_url,
                "fingerprint": a.fingerprint,
            }
            for a in alerts
        ],
    }
