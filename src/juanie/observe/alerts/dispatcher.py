"""Aggregation groups and notification decisions with Alertmanager's timing, driven by ``tick(now)``.

Time is always passed in, so group_wait / group_interval / repeat_interval are tested without sleeping and a
controller can drive the dispatcher from its own timer. The decision to notify follows Alertmanager's dedup
stage: a new firing alert, newly resolved alerts, or a repeat interval elapsed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from juanie.observe.alerts.model import Alert
from juanie.observe.alerts.route import Route, match_routes
from juanie.observe.alerts.silences import (
    DEFAULT_INHIBIT_RULES,
    InhibitRule,
    Silence,
    is_inhibited,
    is_silenced,
)


@dataclass(frozen=True)
class Notification:
    """One message for one receiver about one aggregation group, as of ``at``."""

    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    alerts: tuple[Alert, ...]
    status: str  # "firing" if any alert fires, else "resolved"
    at: float
    truncated_alerts: int = 0

    def alert_status(self, alert: Alert) -> str:
        return alert.status(self.at)

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if not a.resolved(self.at)]

    @property
    def resolved(self) -> list[Alert]:
        return [a for a in self.alerts if a.resolved(self.at)]


@dataclass(frozen=True)
class _LogEntry:
    firing: frozenset[str]
    resolved: frozenset[str]
    at: float


@dataclass
class _Group:
    route: Route
    labels: dict[str, str]
    key: str
    next_flush: float
    alerts: dict[str, Alert] = field(default_factory=dict)
    flushed: bool = False


def group_key(route: Route, labels: Mapping[str, str]) -> str:
    """Alertmanager's group key: the route path, then the group labels, e.g. ``{}/{team="web"}:{env="prod"}``."""
    body = ", ".join(f'{k}="{labels[k]}"' for k in sorted(labels))
    return f"{route.key}:{{{body}}}"


class Dispatcher:
    """Routes alerts into aggregation groups and decides, on each ``tick``, which notifications to send."""

    def __init__(
        self,
        route: Route,
        inhibit_rules: Sequence[InhibitRule] = DEFAULT_INHIBIT_RULES,
        silences: Iterable[Silence] = (),
        send_resolved: Mapping[str, bool] | None = None,
        max_alerts: int = 0,
    ) -> None:
        match_routes(route, {})  # validates the root early (a missing receiver fails here, not at the first alert)
        self.route = route
        self.inhibit_rules = list(inhibit_rules)
        self.silences = list(silences)
        self.send_resolved = dict(send_resolved or {})
        self.max_alerts = max_alerts
        self._groups: dict[str, _Group] = {}
        self._log: dict[tuple[str, str], _LogEntry] = {}
        self._previous: dict[tuple[str, str], _LogEntry | None] = {}

    def put(self, alerts: Iterable[Alert], now: float) -> None:
        """Insert or update alerts (matched by fingerprint) in every group their routes lead to."""
        for alert in alerts:
            for route in match_routes(self.route, alert.labels):
                labels = route.group_labels(alert.labels)
                key = group_key(route, labels)
                group = self._groups.get(key)
                if group is None and alert.resolved(now):
                    continue  # a resolved alert nobody was told about starts no group
                if group is None:
                    assert route.group_wait is not None
                    group = self._groups[key] = _Group(route, labels, key, now + route.group_wait)
                group.alerts[alert.fingerprint] = alert
                assert route.group_wait is not None
                if not group.flushed and alert.starts_at + route.group_wait < now:
                    group.next_flush = min(group.next_flush, now)  # old alert: its wait is already over

    def groups(self) -> list[tuple[str, str, list[Alert]]]:
        """``(receiver, group key, alerts)`` of every live group, for the UI."""
        return [(g.route.receiver or "", g.key, list(g.alerts.values())) for g in self._groups.values()]

    def tick(self, now: float) -> list[Notification]:
        """Flush every group whose time has come; return the notifications to send now."""
        firing = [a.labels for g in self._groups.values() for a in g.alerts.values() if not a.resolved(now)]
        out: list[Notification] = []
        for key in list(self._groups):
            group = self._groups[key]
            if group.next_flush > now:
                continue
            notification = self._flush(group, now, firing)
            if notification is not None:
                out.append(notification)
            group.flushed = True
            assert group.route.group_interval is not None
            group.next_flush = now + group.route.group_interval
            for fp in [fp for fp, a in group.alerts.items() if a.resolved(now)]:
                del group.alerts[fp]
            if not group.alerts:
                del self._groups[key]
        return out

    def mark_failed(self, notification: Notification) -> None:
        """Forget that ``notification`` was sent (delivery failed) so the group's next flush sends it again."""
        key = (notification.receiver, notification.group_key)
        previous = self._previous.pop(key, None)
        if previous is None:
            self._log.pop(key, None)
        else:
            self._log[key] = previous

    def _flush(self, group: _Group, now: float, firing: list[Mapping[str, str]]) -> Notification | None:
        receiver = group.route.receiver or ""
        visible = [
            a
            for a in group.alerts.values()
            if not is_silenced(a.labels, self.silences, now) and not is_inhibited(a.labels, firing, self.inhibit_rules)
        ]
        firing_fps = frozenset(a.fingerprint for a in visible if not a.resolved(now))
        resolved_fps = frozenset(a.fingerprint for a in visible if a.resolved(now))
        log_key = (receiver, group.key)
        entry = self._log.get(log_key)
        send_resolved = self.send_resolved.get(receiver, True)
        assert group.route.repeat_interval is not None
        if not _needs_update(entry, firing_fps, resolved_fps, send_resolved, now, group.route.repeat_interval):
            return None
        self._previous[log_key] = entry
        self._log[log_key] = _LogEntry(firing_fps, resolved_fps, now)
        if not send_resolved:
            visible = [a for a in visible if not a.resolved(now)]
            if not visible:
                return None
        visible.sort(key=lambda a: (a.starts_at, a.fingerprint))
        truncated = 0
        if self.max_alerts and len(visible) > self.max_alerts:
            truncated = len(visible) - self.max_alerts
            visible = visible[: self.max_alerts]
        status = "firing" if firing_fps else "resolved"
        return Notification(receiver, group.key, dict(group.labels), tuple(visible), status, now, truncated)


def _needs_update(
    entry: _LogEntry | None,
    firing: frozenset[str],
    resolved: frozenset[str],
    send_resolved: bool,
    now: float,
    repeat: float,
) -> bool:
    """Alertmanager's ``DedupStage.needsUpdate``."""
    if entry is None:
        return bool(firing)
    if not firing <= entry.firing:
        return True
    if not firing:
        return bool(entry.firing)  # every alert resolved: clear the receiver's view (even without send_resolved)
    if send_resolved and not resolved <= entry.resolved:
        return True
    return entry.at < now - repeat
