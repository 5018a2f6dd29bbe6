"""Acceptance: a fault fires HighErrorRate after its `for`, one grouped Alertmanager-format notification reaches a
real HTTP receiver, clearing the fault resolves it, and a silence made before the fault means no notification.

Gateway counters are written into the real store at simulated 15 s scrape times, so minutes of alerting run in
well under a second while rules, routing and delivery over a real socket run unchanged.
"""

from __future__ import annotations

from juanie.observe.alert_loop import AlertLoop
from juanie.observe.alerts.defaults import default_rules
from juanie.observe.alerts.routing import Dispatcher, Route, Silence, parse_matchers
from juanie.observe.metrics.query import QueryEngine
from juanie.observe.metrics.store import MetricStore
from juanie.observe.notify import HttpChannel, Notifier

T0 = 1_714_564_800.0
SERVICES = ("payment", "order")


class Gateway:
    """Writes juanie_gateway_requests_total as the gateway would: 10 requests/s per service, some failing."""

    def __init__(self, store: MetricStore) -> None:
        self.store = store
        self.ok = dict.fromkeys(SERVICES, 0.0)
        self.errors = dict.fromkeys(SERVICES, 0.0)
        self.error_ratio = 0.0

    def advance(self, ts: float, seconds: float = 15.0) -> None:
        for service in SERVICES:
            total = 10 * seconds
            self.errors[service] += total * self.error_ratio
            self.ok[service] += total * (1 - self.error_ratio)
            for code, value in (("200", self.ok[service]), ("500", self.errors[service])):
                labels = {"env": "shop-prod", "service": service, "version": "v1", "code": code}
                self.store.append("juanie_gateway_requests_total", labels, value, ts)


def make_loop(receiver_url: str, silences: list[Silence]) -> tuple[AlertLoop, Gateway]:
    store = MetricStore()
    engine = QueryEngine(store)
    rules = [r for r in default_rules() if r.name == "HighErrorRate"]
    route = Route(receiver="shop", group_by=("alertname", "env"))  # Alertmanager defaults: 30s / 5m / 4h
    loop = AlertLoop(
        rules,
        lambda expr, at: engine.query(expr, at).samples(),
        Dispatcher(route, silences=silences),
        Notifier(max_attempts=3, backoff_base=0.01),
        {"shop": [HttpChannel("shop-hook", "webhook", receiver_url, external_url="http://juanie.test")]},
    )
    return loop, Gateway(store)


async def run(loop: AlertLoop, gateway: Gateway, start: float, end: float, log: list) -> float:
    ts = start
    while ts < end:
        ts += 15
        gateway.advance(ts)
        result = await loop.step(ts)
        log.extend((ts, t.rule, t.previous, t.current) for t in result.transitions)
    return ts


async def test_fault_fires_once_grouped_then_resolves(http_receiver, wait_until) -> None:
    loop, gateway = make_loop(http_receiver.url, [])
    log: list = []
    ts = await run(loop, gateway, T0, T0 + 600, log)  # ten healthy minutes
    assert log == [] and http_receiver.requests == []

    gateway.error_ratio = 0.5
    fault_at = ts
    ts = await run(loop, gateway, ts, ts + 60, log)
    assert {(p, c) for _, _, p, c in log} == {("inactive", "pending")} and http_receiver.requests == []
    ts = await run(loop, gateway, ts, fault_at + 300, log)
    fired = [t for t, _, p, c in log if c == "firing"]
    pending = [t for t, _, p, c in log if c == "pending"]
    assert len(fired) == 2 and min(fired) - min(pending) >= 120  # the rule's `for: 2m` was honoured
    wait_until(lambda: len(http_receiver.requests) == 1, message="one firing notification")
    (payload,) = http_receiver.bodies()
    assert payload["version"] == "4" and payload["status"] == "firing" and payload["receiver"] == "shop"
    assert payload["groupLabels"] == {"alertname": "HighErrorRate", "env": "shop-prod"}
    assert sorted(a["labels"]["service"] for a in payload["alerts"]) == sorted(SERVICES)
    assert all(a["status"] == "firing" and a["annotations"]["summary"] for a in payload["alerts"])
    assert payload["externalURL"] == "http://juanie.test"

    gateway.error_ratio = 0.0
    ts = await run(loop, gateway, ts, ts + 900, log)
    assert sum(1 for *_, c in log if c == "resolved") == 2
    wait_until(lambda: len(http_receiver.requests) == 2, message="the resolved notification")
    resolved = http_receiver.bodies()[1]
    assert resolved["status"] == "resolved" and all(a["status"] == "resolved" for a in resolved["alerts"])
    assert {a["fingerprint"] for a in resolved["alerts"]} == {a["fingerprint"] for a in payload["alerts"]}
    await run(loop, gateway, ts, ts + 900, log)
    assert len(http_receiver.requests) == 2  # nothing more once resolved
    await loop.notifier.aclose()


async def test_silence_created_before_the_fault_suppresses_notifications(http_receiver) -> None:
    silence = Silence(
        "maint-1",
        tuple(parse_matchers('alertname="HighErrorRate",env="shop-prod"')),
        T0,
        T0 + 86400,
        "ana",
        "planned maintenance",
    )
    loop, gateway = make_loop(http_receiver.url, [silence])
    log: list = []
    ts = await run(loop, gateway, T0, T0 + 600, log)
    gateway.error_ratio = 0.5
    ts = await run(loop, gateway, ts, ts + 900, log)
    assert any(c == "firing" for *_, c in log)  # the alert fires: the silence mutes, it does not hide
    gateway.error_ratio = 0.0
    await run(loop, gateway, ts, ts + 900, log)
    assert any(c == "resolved" for *_, c in log)
    assert http_receiver.requests == []
    await loop.notifier.aclose()
