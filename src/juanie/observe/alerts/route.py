"""Alertmanager's routing tree: matchers, ``continue``, grouping and timing inherited from parent routes.

``match_routes`` mirrors Alertmanager's ``Route.Match``: depth-first, the first matching child wins unless it says
``continue``, and a route with no matching child handles the alert itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from juanie.observe.durations import DurationError, parse_duration
from juanie.observe.matchers import Matcher, MatcherError, format_matchers, parse_matcher

DEFAULT_GROUP_WAIT = 30.0
DEFAULT_GROUP_INTERVAL = 300.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0
ALL_LABELS = "..."


class RouteConfigError(ValueError):
    """A route definition that is invalid; the message starts with its location (``route.routes[1].matchers``)."""


@dataclass(frozen=True)
class Route:
    """A node of the tree. ``None`` fields inherit from the parent; the root gets Alertmanager's defaults."""

    receiver: str | None = None
    matchers: tuple[Matcher, ...] = ()
    continue_: bool = False
    group_by: tuple[str, ...] | None = None
    group_wait: float | None = None
    group_interval: float | None = None
    repeat_interval: float | None = None
    routes: tuple[Route, ...] = ()
    key: str = field(default="", compare=False)

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels that identify this alert's aggregation group on this route."""
        group_by = self.group_by or ()
        if ALL_LABELS in group_by:
            return dict(labels)
        return {k: labels[k] for k in group_by if labels.get(k, "") != ""}


def _inherit(route: Route, parent: Route | None) -> Route:
    if parent is None:
        receiver = route.receiver
        if not receiver:
            raise RouteConfigError("route: the root route needs a receiver")
        return replace(
            route,
            group_by=route.group_by if route.group_by is not None else (),
            group_wait=DEFAULT_GROUP_WAIT if route.group_wait is None else route.group_wait,
            group_interval=DEFAULT_GROUP_INTERVAL if route.group_interval is None else route.group_interval,
            repeat_interval=DEFAULT_REPEAT_INTERVAL if route.repeat_interval is None else route.repeat_interval,
            key="{}",
        )
    return replace(
        route,
        receiver=route.receiver or parent.receiver,
        group_by=parent.group_by if route.group_by is None else route.group_by,
        group_wait=parent.group_wait if route.group_wait is None else route.group_wait,
        group_interval=parent.group_interval if route.group_interval is None else route.group_interval,
        repeat_interval=parent.repeat_interval if route.repeat_interval is None else route.repeat_interval,
        key=f"{parent.key}/{format_matchers(route.matchers)}",
    )


def match_routes(route: Route, labels: Mapping[str, str]) -> list[Route]:
    """The routes (with inherited settings filled in) that handle an alert with ``labels``."""
    return _match(_inherit(route, None), labels)


def _match(route: Route, labels: Mapping[str, str]) -> list[Route]:
    if not all(m.matches(labels) for m in route.matchers):
        return []
    found: list[Route] = []
    for child in route.routes:
        matches = _match(_inherit(child, route), labels)
        found.extend(matches)
        if matches and not child.continue_:
            break
    return found or [route]


def receivers(route: Route) -> set[str]:
    """Every receiver named in the tree, to check that each one is configured."""
    names = {route.receiver} if route.receiver else set()
    for child in route.routes:
        names |= receivers(child)
    return names


def ownership_route(
    owners: Mapping[str, str],
    default_receiver: str,
    routes: Sequence[Route] = (),
    group_by: Sequence[str] = ("alertname", "env", "service"),
) -> Route:
    """A tree where each owning team's alerts go to a receiver named after the team.

    ``owners`` maps service → team (from ``juanie.yaml``). ``routes`` from the project come first, so a route
    that says otherwise wins; alerts of services without an owner reach ``default_receiver``.
    """
    teams = sorted(set(owners.values()))
    team_routes = tuple(Route(receiver=team, matchers=(Matcher("team", "=", team),)) for team in teams)
    return Route(receiver=default_receiver, group_by=tuple(group_by), routes=(*routes, *team_routes))


def with_owner(labels: Mapping[str, str], owners: Mapping[str, str]) -> dict[str, str]:
    """``labels`` plus ``team`` from the service's owner, unless the alert already names a team."""
    out = dict(labels)
    if not out.get("team") and out.get("service") in owners:
        out["team"] = owners[out["service"]]
    return out


def route_from_config(data: Any, where: str = "route", root: bool = True) -> Route:
    """Build a tree from Alertmanager's ``route:`` YAML shape (``matchers``, legacy ``match``/``match_re`` too)."""
    if not isinstance(data, Mapping):
        raise RouteConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    allowed = {
        "receiver",
        "matchers",
        "match",
        "match_re",
        "continue",
        "group_by",
        "group_wait",
        "group_interval",
        "repeat_interval",
        "routes",
    }
    unknown = set(data) - allowed
    if unknown:
        raise RouteConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    matchers: list[Matcher] = []
    try:
        for i, text in enumerate(data.get("matchers", []) or []):
            if not isinstance(text, str):
                raise RouteConfigError(f"{where}.matchers[{i}]: expected a string like 'team=\"web\"'")
            matchers.append(parse_matcher(text))
        for key, op in (("match", "="), ("match_re", "=~")):
            for name, value in (data.get(key) or {}).items():
                matchers.append(Matcher(str(name), op, str(value)))
    except MatcherError as exc:
        raise RouteConfigError(f"{where}.matchers: {exc}") from None
    group_by = data.get("group_by")
    if group_by is not None and (not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by)):
        raise RouteConfigError(f"{where}.group_by: expected a list of label names")
    timings: dict[str, float | None] = {}
    for key in ("group_wait", "group_interval", "repeat_interval"):
        try:
            timings[key] = parse_duration(data[key]) if key in data else None
        except DurationError as exc:
            raise RouteConfigError(f"{where}.{key}: {exc}") from None
    children = data.get("routes", []) or []
    if not isinstance(children, list):
        raise RouteConfigError(f"{where}.routes: expected a list of routes")
    receiver = data.get("receiver")
    if root and not receiver:
        raise RouteConfigError(f"{where}.receiver: the root route needs a receiver")
    if root and matchers:
        raise RouteConfigError(f"{where}: the root route must not have matchers (it receives every alert)")
    return Route(
        receiver=str(receiver) if receiver else None,
        matchers=tuple(matchers),
        continue_=bool(data.get("continue", False)),
        group_by=tuple(group_by) if group_by is not None else None,
        routes=tuple(route_from_config(c, f"{where}.routes[{i}]", root=False) for i, c in enumerate(children)),
        **timings,
    )
