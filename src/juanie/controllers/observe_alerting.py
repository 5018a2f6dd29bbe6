"""One project's alerting: its rules' state, its dispatcher (groups, notification log), and one round of both.

Evaluation runs in a thread (a Prometheus backend answers over blocking HTTP; the embedded engine is numpy work);
routing, grouping and sending stay on the event loop. The state lives in memory between rounds, as Prometheus
keeps its rule state; episodes in the database carry the history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from juanie.controllers.observe_rules import RuleSet, Timing, route_for
from juanie.observe.alerts.dispatcher import Dispatcher, Notification
from juanie.observe.alerts.model import Alert, fingerprint
from juanie.observe.alerts.route import Route, with_owner
from juanie.observe.alerts.rules import AlertState, CountFn, QueryFn, Transition, evaluate
from juanie.observe.alerts.silences import Silence
from juanie.observe.notify.channels import Channel
from juanie.observe.notify.notifier import DeliveryRecord


@dataclass
class RoundResult:
    transitions: list[Transition] = field(default_factory=list)
    annotations: dict[str, dict[str, str]] = field(default_factory=dict)  # fingerprint -> annotations
    notifications: list[Notification] = field(default_factory=list)
    deliveries: list[DeliveryRecord] = field(default_factory=list)


class ProjectAlerting:
    """Rules, state and dispatcher of one project. ``configure`` may be called every round; it keeps the
    dispatcher (and so the groups and what was already sent) unless the route itself changed."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.rules = RuleSet()
        self.state = AlertState()
        self.owners: dict[str, str] = {}
        self.dispatcher: Dispatcher | None = None
        self._route: Route | None = None
        self.loaded_at = 0.0
        self.spec_error = ""

    def configure(
        self,
        rules: RuleSet,
        group_by: Sequence[str],
        teams: Sequence[str],
        owners: Mapping[str, str],
        timing: Timing,
    ) -> None:
        self.rules = rules
        self.owners = dict(owners)
        route = route_for(group_by, teams, timing)
        if self.dispatcher is None or route != self._route:
            self.dispatcher = Dispatcher(route)
            self._route = route

    def rule_errors(self) -> dict[str, str]:
        return {**self.rules.errors, **dict(self.state.rule_errors)}

    def _owned(self, alert: Alert) -> Alert:
        labels = with_owner(alert.labels, self.owners)
        labels.setdefault("project", self.project)
        if labels == dict(alert.labels):
            return alert
        return Alert(labels, alert.annotations, alert.starts_at, alert.ends_at, alert.generator_url, alert.source)

    def receive(self, alerts: Iterable[Alert], now: float) -> list[Alert]:
        """Alerts from an Alertmanager join the same routing, silences and grouping; returns them as routed.

        An alert with exactly the labels of one Juanie evaluates itself (the same rule exported to Prometheus) is
        the same alert: Juanie's own state decides when it fires and resolves, so it is listed but not routed twice.
        """
        assert self.dispatcher is not None, "configure() first"
        owned = [self._owned(a) for a in alerts]
        mine = {self._owned(a.to_alert()).fingerprint for a in self.state.alerts.values()}
        self.dispatcher.put((a for a in owned if a.fingerprint not in mine), now)
        return owned

    async def evaluate(self, query_fn: QueryFn, count_fn: CountFn | None, now: float, url: str) -> RoundResult:
        state, transitions = await asyncio.to_thread(
            evaluate, self.rules.rules, query_fn, now, self.state, count_fn, external_url=url
        )
        self.state = state
        annotations = {fingerprint(a.labels): dict(a.annotations) for a in state.alerts.values()}
        return RoundResult(transitions, annotations)

    async def dispatch(
        self,
        now: float,
        silences: Sequence[Silence],
        receivers: Mapping[str, Sequence[Channel]],
        send_resolved: Mapping[str, bool],
        send: Callable[[Channel, Notification], object],
        result: RoundResult,
    ) -> RoundResult:
        """Route what fires, flush the groups that are due, send; a group whose every send failed is retried."""
        assert self.dispatcher is not None, "configure() first"
        self.dispatcher.silences = list(silences)
        self.dispatcher.send_resolved = dict(send_resolved)
        self.dispatcher.put((self._owned(a) for a in self.state.notifiable()), now)
        for notification in self.dispatcher.tick(now):
            result.notifications.append(notification)
            channels = receivers.get(notification.receiver, ())
            records: list[DeliveryRecord] = list(await asyncio.gather(*(send(c, notification) for c in channels)))  # type: ignore[arg-type]
            result.deliveries.extend(records)
            if records and not any(r.ok for r in records):
                self.dispatcher.mark_failed(notification)
        return result
