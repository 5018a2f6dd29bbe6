"""The local engine's HTTP gateway: a reverse proxy in its own process, driven through its admin API."""

from juanie.engines.local.gateway.client import GatewayAdminError, GatewayClient, signals_from_json
from juanie.engines.local.gateway.routes import Backend, Fault, MatchRule, Route, RouteError, parse_routes
from juanie.engines.local.gateway.server import Gateway, GatewayConfig, run_gateway
from juanie.engines.local.gateway.signals import LATENCY_BUCKETS, TrafficStats, WindowSignals

__all__ = [
    "LATENCY_BUCKETS",
    "Backend",
    "Fault",
    "Gateway",
    "GatewayAdminError",
    "GatewayClient",
    "GatewayConfig",
    "MatchRule",
    "Route",
    "RouteError",
    "TrafficStats",
    "WindowSignals",
    "parse_routes",
    "run_gateway",
    "signals_from_json",
]
