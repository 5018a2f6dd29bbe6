"""Routing, grouping timings, silences and inhibition, with time passed in."""

from __future__ import annotations

import pytest

from juanie.observe.alerts.model import Alert, fingerprint
from juanie.observe.alerts.routing import (
    Dispatcher,
    Route,
    RouteConfigError,
    Silence,
    SilenceError,
    is_silenced,
    match_routes,
    ownership_route,
    parse_matchers,
    route_from_config,
    with_owner,
)
from juanie.observe.matchers import MatcherError, parse_matcher


def alert(name: str, starts: float = 0.0, ends: float | None = None, **labels: str) -> Alert:
    return Alert({"alertname": name, **labels}, {"summary": name}, starts, ends)


def test_matcher_strings_like_alertmanager() -> None:
    ms = parse_matchers('{severity=~"P0|P1", team="web,shop", env!=prod}')
    assert [(m.name, m.op, m.value) for m in ms] == [
        ("severity", "=~", "P0|P1"),
        ("team", "=", "web,shop"),
        ("env", "!=", "prod"),
    ]
    assert ms[0].matches({"severity": "P1"}) and not ms[0].matches({"severity": "P10"})  # anchored
    assert parse_matcher('msg="say \\"hi\\""').value == 'say "hi"'
    with pytest.raises(MatcherError, match="expected name"):
        parse_matcher("just words")
    with pytest.raises(MatcherError, match="invalid regular expression"):
        parse_matcher('a=~"("')


def test_route_tree_first_match_wins_unless_continue() -> None:
    tree = route_from_config(
        {
            "receiver": "default",
            "group_by": ["alertname"],
            "routes": [
                {"matchers": ['severity="P0"'], "receiver": "pager", "continue": True, "group_wait": "10s"},
                {"matchers": ['team="web"'], "receiver": "web"},
                {"matchers": ['team=~"web|shop"'], "receiver": "never-for-web"},
            ],
        }
    )
    got = match_routes(tree, {"severity": "P0", "team": "web"})
    assert [(r.receiver, r.group_wait, r.group_by) for r in got] == [
        ("pager", 10.0, ("alertname",)),
        ("web", 30.0, ("alertname",)),
    ]
    assert [r.receiver for r in match_routes(tree, {"team": "shop"})] == ["never-for-web"]
    (fallback,) = match_routes(tree, {"team": "ops"})
    assert (fallback.receiver, fallback.repeat_interval, fallback.key) == ("default", 4 * 3600, "{}")
    assert got[1].key == '{}/{team="web"}'


def test_route_config_errors_name_the_field() -> None:
    with pytest.raises(RouteConfigError, match=r"route.routes\[0\].group_wait: expected a duration"):
        route_from_config({"receiver": "x", "routes": [{"group_wait": "later"}]})
    with pytest.raises(RouteConfigError, match="root route needs a receiver"):
        route_from_config({"routes": []})
    with pytest.raises(RouteConfigError, match=r"route.routes\[0\].matchers"):
        route_from_config({"receiver": "x", "routes": [{"matchers": ["bad matcher"]}]})


def test_ownership_routes_alerts_to_the_owning_team_unless_a_route_says_otherwise() -> None:
    owners = {"payment": "payments-team", "user": "identity"}
    override = Route(receiver="oncall", matchers=tuple(parse_matchers('severity="P0"')))
    tree = ownership_route(owners, "platform", routes=[override])
    assert [r.receiver for r in match_routes(tree, with_owner({"service": "payment"}, owners))] == ["payments-team"]
    assert [r.receiver for r in match_routes(tree, with_owner({"service": "user", "severity": "P0"}, owners))] == [
        "oncall"
    ]
    assert [r.receiver for r in match_routes(tree, with_owner({"service": "unknown"}, owners))] == ["platform"]
    assert with_owner({"service": "user", "team": "other"}, owners)["team"] == "other"


def make_dispatcher(**kw: object) -> Dispatcher:
    route = Route(receiver="r", group_by=("alertname", "env"), group_wait=30, group_interval=300, repeat_interval=3600)
    return Dispatcher(route, **kw)  # type: ignore[arg-type]


def test_group_wait_batches_then_group_interval_then_repeat() -> None:
    d = make_dispatcher()
    d.put([alert("HighErrorRate", 100, env="prod", service="a")], now=100)
    assert d.tick(129) == []
    d.put([alert("HighErrorRate", 110, env="prod", service="b")], now=110)
    (first,) = d.tick(130)
    assert first.group_key == '{}:{alertname="HighErrorRate", env="prod"}'
    assert first.group_labels == {"alertname": "HighErrorRate", "env": "prod"}
    assert [a.labels["service"] for a in first.alerts] == ["a", "b"] and first.status == "firing"
    assert d.tick(429) == [] and d.tick(430) == []  # flushed on the interval: nothing changed, repeat not due
    d.put([alert("HighErrorRate", 500, env="prod", service="c")], now=500)
    assert d.tick(500) == []  # new alert waits for the next group_interval tick
    (second,) = d.tick(730)
    assert len(second.alerts) == 3
    # flushes happen every 300 s; the repeat goes out at the first flush strictly after 730 + 3600
    assert all(d.tick(t) == [] for t in range(1030, 4331, 300))
    assert len(d.tick(4630)) == 1


def test_resolution_is_sent_once_and_the_group_is_dropped() -> None:
    d = make_dispatcher()
    d.put([alert("Down", 0, env="dev")], now=0)
    assert len(d.tick(30)) == 1
    d.put([alert("Down", 0, ends=200, env="dev")], now=200)
    assert d.tick(300) == []  # not yet: the group flushes on its interval (30 + 300)
    (resolved,) = d.tick(330)
    assert resolved.status == "resolved" and resolved.alerts[0].resolved(330)
    assert d.groups() == [] and d.tick(10_000) == []


def test_old_alert_flushes_without_waiting() -> None:
    d = make_dispatcher()
    d.put([alert("Down", 0, env="dev")], now=500)  # started 500 s ago: group_wait is long over
    assert len(d.tick(500)) == 1


def test_silence_created_before_the_alert_means_no_notification() -> None:
    silence = Silence("s1", tuple(parse_matchers('alertname="Down",env="dev"')), 0, 1000, "ana", "maintenance")
    d = make_dispatcher(silences=[silence])
    d.put([alert("Down", 10, env="dev"), alert("Down", 10, env="prod")], now=10)
    notes = d.tick(40)
    assert [n.group_labels["env"] for n in notes] == ["prod"]
    assert is_silenced({"alertname": "Down", "env": "dev"}, [silence], 999)
    assert not is_silenced({"alertname": "Down", "env": "dev"}, [silence], 1000)  # expired
    assert silence.state(-1) == "pending"


def test_silences_must_be_specific_and_explained() -> None:
    with pytest.raises(SilenceError, match="must not match an empty label"):
        Silence("x", tuple(parse_matchers('a=~".*"')), 0, 10, "ana", "why")
    with pytest.raises(SilenceError, match="ends_at must be after"):
        Silence("x", tuple(parse_matchers('a="1"')), 10, 10, "ana", "why")
    with pytest.raises(SilenceError, match="created_by and comment"):
        Silence("x", tuple(parse_matchers('a="1"')), 0, 10, "ana", " ")


def test_service_down_inhibits_latency_of_the_same_service_only() -> None:
    route = Route(receiver="r", group_by=("alertname", "service"), group_wait=0)
    d = Dispatcher(route)
    d.put(
        [
            alert("ServiceDown", 0, env="prod", service="pay"),
            alert("HighLatency", 0, env="prod", service="pay"),
            alert("HighLatency", 0, env="prod", service="user"),
            alert("HighErrorRate", 0, env="dev", service="pay"),
        ],
        now=0,
    )
    sent = {(n.group_labels["alertname"], n.group_labels["service"]) for n in d.tick(0)}
    assert sent == {("ServiceDown", "pay"), ("HighLatency", "user"), ("HighErrorRate", "pay")}


def test_failed_delivery_is_retried_on_the_next_flush() -> None:
    d = make_dispatcher()
    d.put([alert("Down", 0, env="dev")], now=0)
    (note,) = d.tick(30)
    d.mark_failed(note)
    assert len(d.tick(330)) == 1


def test_fingerprint_matches_alertmanager() -> None:
    # FNV-1a 64 of the empty label set is the offset basis, as in prometheus/common's model package
    assert fingerprint({}) == "cbf29ce484222325"
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert fingerprint({"a": "1"}) != fingerprint({"a": "2"})
