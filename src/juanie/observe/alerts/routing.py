"""Routing as Alertmanager does it: the route tree, aggregation and timing, silences and inhibition.

This module is the one import for callers; the parts live in ``route``, ``dispatcher`` and ``silences``.
"""

from juanie.observe.alerts.dispatcher import Dispatcher, Notification, group_key
from juanie.observe.alerts.route import (
    DEFAULT_GROUP_INTERVAL,
    DEFAULT_GROUP_WAIT,
    DEFAULT_REPEAT_INTERVAL,
    Route,
    RouteConfigError,
    match_routes,
    ownership_route,
    receivers,
    route_from_config,
    with_owner,
)
from juanie.observe.alerts.silences import (
    DEFAULT_INHIBIT_RULES,
    InhibitRule,
    Silence,
    SilenceError,
    is_inhibited,
    is_silenced,
    silenced_by,
)
from juanie.observe.matchers import Matcher, parse_matcher, parse_matchers

__all__ = [
    "DEFAULT_GROUP_INTERVAL",
    "DEFAULT_GROUP_WAIT",
    "DEFAULT_INHIBIT_RULES",
    "DEFAULT_REPEAT_INTERVAL",
    "Dispatcher",
    "InhibitRule",
    "Matcher",
    "Notification",
    "Route",
    "RouteConfigError",
    "Silence",
    "SilenceError",
    "group_key",
    "is_inhibited",
    "is_silenced",
    "match_routes",
    "ownership_route",
    "parse_matcher",
    "parse_matchers",
    "receivers",
    "route_from_config",
    "silenced_by",
    "with_owner",
]
