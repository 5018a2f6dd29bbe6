"""Route table validation: all-or-nothing, with messages that name the field and what was expected."""

from __future__ import annotations

from typing import Any

import pytest

from juanie.engines.local.gateway.routes import (
    RouteError,
    parse_fault,
    parse_routes,
    parse_weights,
    routes_document,
    with_weights,
)


def _route(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "shop-dev/payment",
        "env": "shop-dev",
        "service": "payment",
        "hosts": ["Payment.Shop-Dev.localhost"],
        "path_prefix": "/shop-dev/payment/",
        "backends": [
            {"version": "a1b2c3d", "track": "stable", "weight": 90, "endpoints": ["127.0.0.1:40101"]},
            {"version": "e4f5a6b", "track": "canary", "weight": 10, "endpoints": ["[::1]:40102"]},
        ],
        "match": [{"header": "x-juanie-track", "value": "canary", "track": "canary"}],
        "fault": {"delay_ms": 0, "abort_percent": 0, "abort_status": 503},
    }
    doc.update(extra)
    return doc


def test_the_documented_route_parses_and_normalises() -> None:
    (route,) = parse_routes({"routes": [_route()]})
    assert route.hosts == ("payment.shop-dev.localhost",)
    assert route.path_prefix == "/shop-dev/payment"
    assert route.timeout_seconds == 30
    assert [b.weight for b in route.backends] == [90, 10]
    assert parse_routes(routes_document((route,))) == (route,)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"backends": [{"version": "v", "endpoints": ["127.0.0.1"]}]}, "routes[0].backends[0].endpoints"),
        ({"backends": [{"version": "v", "endpoints": ["h:70000"]}]}, "port 1..65535"),
        ({"backends": [{"version": "", "endpoints": []}]}, "routes[0].backends[0].version"),
        ({"backends": [{"version": "v", "weight": "lots"}]}, "routes[0].backends[0].weight"),
        ({"hosts": ["http://x.localhost"]}, "host name without port or scheme"),
        ({"hosts": ["*.localhost"]}, "host name without port or scheme"),
        ({"hosts": [], "path_prefix": None}, "at least one of 'hosts' or 'path_prefix'"),
        ({"path_prefix": "shop"}, "starting with '/'"),
        ({"name": "bad name!"}, "route name"),
        ({"timeout_seconds": 0}, "routes[0].timeout_seconds"),
        ({"match": [{"header": "a", "cookie": "b", "value": "x", "track": "canary"}]}, "exactly one of"),
        ({"match": [{"header": "bad header", "value": "x", "track": "canary"}]}, "header name"),
        ({"fault": {"abort_percent": 101}}, "routes[0].fault.abort_percent"),
        ({"fault": {"abort_status": 200}}, "routes[0].fault.abort_status"),
        ({"colour": "blue"}, "routes[0].colour"),
    ],
)
def test_bad_routes_are_rejected_with_the_field_named(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(RouteError) as err:
        parse_routes({"routes": [_route(**change)]})
    assert expected in str(err.value)


def test_names_and_host_claims_must_be_unique() -> None:
    with pytest.raises(RouteError, match="appears twice"):
        parse_routes({"routes": [_route(), _route()]})
    with pytest.raises(RouteError, match="claimed by routes"):
        parse_routes({"routes": [_route(), _route(name="shop-dev/other")]})
    other_prefix = _route(name="shop-dev/other", path_prefix="/shop-dev/other")
    assert len(parse_routes({"routes": [_route(), other_prefix]})) == 2  # same host, different prefixes


def test_not_an_object_is_a_clear_error() -> None:
    with pytest.raises(RouteError, match="expected a JSON object"):
        parse_routes([_route()])
    with pytest.raises(RouteError, match="routes"):
        parse_routes({"routes": "all of them"})


def test_weights_change_only_the_named_tracks() -> None:
    (route,) = parse_routes({"routes": [_route()]})
    shifted = with_weights(route, parse_weights({"canary": 50}))
    assert [(b.track, b.weight) for b in shifted.backends] == [("stable", 90), ("canary", 50)]
    assert shifted.backends[0].endpoints == route.backends[0].endpoints
    with pytest.raises(RouteError, match="no backend with track 'blue'"):
        with_weights(route, {"blue": 1})
    for bad in ({}, {"stable": -1}, {"stable": True}, {"stable": 1.5}, [1]):
        with pytest.raises(RouteError):
            parse_weights(bad)


def test_fault_defaults_and_limits() -> None:
    assert parse_fault({}).abort_status == 503
    assert parse_fault({"delay_ms": 250, "abort_percent": 12.5}).abort_percent == 12.5
    with pytest.raises(RouteError, match="delay_ms"):
        parse_fault({"delay_ms": -1})
    with pytest.raises(RouteError, match="JSON object"):
        parse_fault("slow")
