"""Pure routing decisions: lookup by host and prefix, forced tracks, weighted choice, endpoint choice."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from juanie.engines.local.gateway.routes import parse_routes
from juanie.engines.local.gateway.table import (
    RouteTable,
    choose_backend,
    cookie_value,
    forced_track,
    pick_endpoint,
    strip_prefix,
)


def _route(name: str, hosts: list[str], prefix: str | None, **extra: Any) -> dict[str, Any]:
    env, _, service = name.partition("/")
    return {"name": name, "env": env, "service": service, "hosts": hosts, "path_prefix": prefix, **extra}


def _table(*routes: dict[str, Any]) -> RouteTable:
    return RouteTable(parse_routes({"routes": list(routes)}))


def test_host_first_then_path_form_with_prefix_stripped() -> None:
    table = _table(
        _route("shop-dev/payment", ["payment.shop-dev.localhost"], "/shop-dev/payment"),
        _route("shop-dev/user", ["user.shop-dev.localhost"], "/shop-dev/user"),
    )
    by_host = table.lookup(b"Payment.Shop-Dev.localhost:8480", b"/api/v1?x=1")
    assert by_host is not None and by_host.route.route.name == "shop-dev/payment" and by_host.path == b"/api/v1?x=1"
    by_path = table.lookup(b"localhost:8480", b"/shop-dev/user/profile")
    assert by_path is not None and by_path.route.route.name == "shop-dev/user" and by_path.path == b"/profile"
    assert table.lookup(b"localhost", b"/shop-dev/username") is None
    assert table.lookup(b"other.localhost", b"/") is None
    assert table.lookup(b"", b"/shop-dev/user") is not None


def test_longest_prefix_and_per_host_prefixes() -> None:
    table = _table(
        _route("a/root", [], "/api"),
        _route("a/v2", [], "/api/v2"),
        _route("b/one", ["api.localhost"], "/one"),
        _route("b/two", ["api.localhost"], "/two"),
    )
    match = table.lookup(b"x", b"/api/v2/items")
    assert match is not None and (match.route.route.name, match.path) == ("a/v2", b"/items")
    match = table.lookup(b"x", b"/api/v20")
    assert match is not None and (match.route.route.name, match.path) == ("a/root", b"/v20")
    match = table.lookup(b"api.localhost", b"/two/x")
    assert match is not None and (match.route.route.name, match.path) == ("b/two", b"/x")


def test_strip_prefix_keeps_query_and_root() -> None:
    assert strip_prefix(b"/p/x?q=1", b"/p") == b"/x?q=1"
    assert strip_prefix(b"/p", b"/p") == b"/"
    assert strip_prefix(b"/p?q", b"/p") == b"/?q"


def _weighted(**extra: Any) -> RouteTable:
    backends = [
        {"version": "s", "track": "stable", "weight": 90, "endpoints": ["127.0.0.1:1"]},
        {"version": "c", "track": "canary", "weight": 10, "endpoints": ["127.0.0.1:2"]},
    ]
    return _table(_route("e/s", ["s.localhost"], None, backends=backends, **extra))


def test_weighted_choice_over_ten_thousand_requests() -> None:
    route = _weighted().by_name["e/s"]
    rng = random.Random(20240601)
    counts = Counter(choose_backend(route, None, rng.random()).backend.version for _ in range(10_000))  # type: ignore[union-attr]
    assert 850 <= counts["c"] <= 1150, counts  # binomial sd = 30: five of them either side
    assert counts["s"] + counts["c"] == 10_000


def test_weighted_choice_edges() -> None:
    route = _weighted().by_name["e/s"]
    assert choose_backend(route, None, 0.0).backend.version == "s"  # type: ignore[union-attr]
    assert choose_backend(route, None, 0.8999).backend.version == "s"  # type: ignore[union-attr]
    assert choose_backend(route, None, 0.9).backend.version == "c"  # type: ignore[union-attr]
    assert choose_backend(route, None, 0.99999999).backend.version == "c"  # type: ignore[union-attr]
    zero = _table(_route("e/z", ["z"], None, backends=[{"version": "v", "weight": 0, "endpoints": ["h:1"]}]))
    assert choose_backend(zero.by_name["e/z"], None, 0.5) is None
    empty = _table(_route("e/z", ["z"], None, backends=[{"version": "v", "weight": 5, "endpoints": []}]))
    assert choose_backend(empty.by_name["e/z"], None, 0.5) is None


def test_forced_track_by_header_or_cookie() -> None:
    rules = [
        {"header": "X-Juanie-Track", "value": "canary", "track": "canary"},
        {"cookie": "juanie-track", "value": "canary", "track": "canary"},
    ]
    route = _weighted(match=rules).by_name["e/s"]
    assert forced_track(route, {b"x-juanie-track": b"canary"}) == "canary"
    assert forced_track(route, {b"x-juanie-track": b"stable"}) is None
    assert forced_track(route, {b"cookie": b"a=1; juanie-track=canary"}) == "canary"
    assert forced_track(route, {b"cookie": b"juanie-track=canaryx"}) is None
    chosen = choose_backend(route, "canary", 0.0)
    assert chosen is not None and chosen.backend.version == "c"
    assert choose_backend(route, "preview", 0.0).backend.version == "s"  # type: ignore[union-attr]


def test_cookie_value_parsing() -> None:
    assert cookie_value(b'a=1; b="two" ; c=3', "b") == "two"
    assert cookie_value(b"a=1", "b") is None
    assert cookie_value(b"novalue; b=2", "b") == "2"


def test_pick_endpoint_prefers_least_inflight_then_round_robin() -> None:
    endpoints = ("a:1", "b:1", "c:1")
    load = {"a:1": 2, "b:1": 0, "c:1": 1}
    assert pick_endpoint(endpoints, lambda e: load[e], 0) == "b:1"
    idle = {e: 0 for e in endpoints}
    assert [pick_endpoint(endpoints, lambda e: idle[e], i) for i in range(6)] == [
        "a:1", "b:1", "c:1", "a:1", "b:1", "c:1",
    ]  # fmt: skip
    assert pick_endpoint(endpoints, lambda e: 0, 0, frozenset({"a:1", "b:1"})) == "c:1"
    assert pick_endpoint(("a:1",), lambda e: 0, 5, frozenset({"a:1"})) == "a:1"  # last resort: retry it
    assert pick_endpoint((), lambda e: 0, 0) is None
