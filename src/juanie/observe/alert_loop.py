"""One alerting round: evaluate rules, route and group, send, record. The integrator calls ``step(now)`` on a timer.

Everything stateful lives in the ``AlertState`` and the ``Dispatcher``; this edge only sequences them and performs
the sends, so it is safe to call again after any failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from juanie.observe.alerts.dispatcher import Dispatcher, Notification
from juanie.observe.alerts.model import Alert
from juanie.observe.alerts.route import with_owner
from juanie.observe.alerts.rules import AlertRule, AlertState, CountFn, LogRule, QueryFn, Transition, evaluate
from juanie.observe.notify.channels import Channel
from juanie.observe.notify.notifier import DeliveryRecord, Notifier


@dataclass
class StepResult:
    transitions: list[Transition] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    deliveries: list[DeliveryRecord] = field(default_factory=list)
    rule_errors: Mapping[str, str] = field(default_factory=dict)


class AlertLoop:
    def __init__(
        self,
        rules: Sequence[AlertRule | LogRule],
        query_fn: QueryFn,
        dispatcher: Dispatcher,
        notifier: Notifier,
        receivers: Mapping[str, Sequence[Channel]],
        count_fn: CountFn | None = None,
        owners: Mapping[str, str] | None = None,
        external_url: str = "",
    ) -> None:
        self.rules = list(rules)
        self.query_fn = query_fn
        self.dispatcher = dispatcher
        self.notifier = notifier
        self.receivers = dict(receivers)
        self.count_fn = count_fn
        self.owners = dict(owners or {})
        self.external_url = external_url
        self.state = AlertState()

    def receive(self, alerts: Iterable[Alert], now: float) -> None:
        """Alerts from outside (an Alertmanager webhook) join the same routing, silences and grouping."""
        self.dispatcher.put((self._owned(a) for a in alerts), now)

    async def step(self, now: float) -> StepResult:
        self.state, transitions = evaluate(
            self.rules, self.query_fn, now, self.state, self.count_fn, external_url=self.external_url
        )
        self.dispatcher.put((self._owned(a) for a in self.state.notifiable()), now)
        notifications = self.dispatcher.tick(now)
        deliveries: list[DeliveryRecord] = []
        for notification in notifications:
            channels = self.receivers.get(notification.receiver, ())
            records = await asyncio.gather(*(self.notifier.send(c, notification) for c in channels))
            deliveries.extend(records)
            if records and not any(r.ok for r in records):
                self.dispatcher.mark_failed(notification)
        return StepResult(transitions, notifications, deliveries, dict(self.state.rule_errors))

    def _owned(self, alert: Alert) -> Alert:
        if not self.owners:
            return alert
        labels = with_owner(alert.labels, self.owners)
        if labels == dict(alert.labels):
            return alert
        return Alert(labels, alert.annotations, alert.starts_at, alert.ends_at, alert.generator_url, alert.source)
