"""Alerts from an existing Prometheus + Alertmanager: parse its webhook (version 4) payload into Juanie alerts.

Teams that keep their own rules point an Alertmanager ``webhook_configs`` receiver at Juanie; the alerts then join
the same routing, silences and timeline as Juanie's own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from juanie.observe.alerts.model import Alert

_ZERO_TIME = re.compile(r"0001-01-01T00:00:00(\.0+)?Z\Z")
_FRACTION = re.compile(r"(\.\d{6})\d+")


class AlertmanagerPayloadError(ValueError):
    """A webhook body that is not Alertmanager's version 4 format; the message names the offending field."""


def parse_alertmanager_webhook(payload: Any) -> list[Alert]:
    if not isinstance(payload, Mapping):
        raise AlertmanagerPayloadError(f"payload: expected a JSON object, got {type(payload).__name__}")
    version = payload.get("version")
    if version != "4":
        raise AlertmanagerPayloadError(f'payload.version: expected "4" (Alertmanager webhook format), got {version!r}')
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise AlertmanagerPayloadError("payload.alerts: expected a list of alerts")
    common = payload.get("commonLabels") or {}
    _string_map(common, "payload.commonLabels")
    return [_alert(item, f"payload.alerts[{i}]") for i, item in enumerate(alerts)]


def _alert(item: Any, where: str) -> Alert:
    if not isinstance(item, Mapping):
        raise AlertmanagerPayloadError(f"{where}: expected an object, got {type(item).__name__}")
    labels = _string_map(item.get("labels"), f"{where}.labels")
    if not labels:
        raise AlertmanagerPayloadError(f"{where}.labels: an alert needs at least one label")
    annotations = _string_map(item.get("annotations", {}) or {}, f"{where}.annotations")
    status = item.get("status", "firing")
    if status not in ("firing", "resolved"):
        raise AlertmanagerPayloadError(f"{where}.status: expected 'firing' or 'resolved', got {status!r}")
    starts = _time(item.get("startsAt"), f"{where}.startsAt")
    ends = _time(item.get("endsAt"), f"{where}.endsAt")
    if starts is None:
        raise AlertmanagerPayloadError(f"{where}.startsAt: required")
    if status == "firing":
        ends = None  # Alertmanager sets endsAt on firing alerts only as a timeout hint; status is authoritative
    elif ends is None:
        raise AlertmanagerPayloadError(f"{where}.endsAt: a resolved alert needs an end time")
    generator = item.get("generatorURL", "") or ""
    if not isinstance(generator, str):
        raise AlertmanagerPayloadError(f"{where}.generatorURL: expected a string")
    return Alert(labels, annotations, starts, ends, generator, source="alertmanager")


def _string_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise AlertmanagerPayloadError(f"{where}: expected an object of strings, got {type(value).__name__}")
    for key, text in value.items():
        if not isinstance(key, str) or not isinstance(text, str):
            raise AlertmanagerPayloadError(f"{where}.{key}: expected a string value, got {type(text).__name__}")
    return dict(value)


def _time(value: Any, where: str) -> float | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise AlertmanagerPayloadError(f"{where}: expected an RFC 3339 time string, got {type(value).__name__}")
    if _ZERO_TIME.match(value):
        return None
    text = _FRACTION.sub(r"\1", value.replace("Z", "+00:00").replace("z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise AlertmanagerPayloadError(
            f"{where}: expected an RFC 3339 time like 2024-05-01T12:00:00Z, got {value!r}"
        ) from None
    if parsed.tzinfo is None:
        raise AlertmanagerPayloadError(f"{where}: time {value!r} has no timezone")
    return parsed.timestamp()
