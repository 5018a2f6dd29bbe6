"""What a gateway process answers about its own data plane: one function for the primary and for every worker.

A gateway with several processes (see `fleet`) asks each of them the same questions and adds the answers up;
the primary answers for its own data plane through the same function, so one process and many behave alike.
Messages are JSON objects, one per line, over a Unix socket pair between the primary and a worker.
"""

from __future__ import annotations

import json
import time
from typing import Any

from juanie.engines.local.gateway.proxy import DataPlane
from juanie.engines.local.gateway.routes import parse_routes
from juanie.engines.local.gateway.table import RouteTable

MAX_MESSAGE = 16 * 1024 * 1024  # a route table of thousands of routes still fits


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a control message is a JSON object")
    return message


def answer(plane: DataPlane, message: dict[str, Any]) -> dict[str, Any]:
    """Carry out one control message on `plane` and say what it asked for.

    - `routes`: serve this table from now on (requests already on a backend finish there)
    - `window`: raw window counts per version of one service (they add up across processes; quantiles don't)
    - `totals`: cumulative counters, upstream errors and requests being answered, for /metrics
    - `inflight`: requests on one endpoint right now, for draining it before it stops
    """
    op = message.get("op")
    if op == "routes":
        plane.replace_table(RouteTable(parse_routes(message["routes"])))
        return {"ok": True}
    if op == "window":
        env, service, window = str(message["env"]), str(message["service"]), float(message["window"])
        now = float(message.get("now") or time.time())
        stats = plane.stats
        return {
            "versions": {
                v: stats.window_counts((env, service, v), window, now).to_wire() for v in stats.versions(env, service)
            }
        }
    if op == "totals":
        return {
            "totals": [t.to_wire() for t in plane.stats.totals()],
            "upstream_errors": [[*key, n] for key, n in plane.upstream_errors.items()],
            "active": plane.active,
        }
    if op == "inflight":
        return {"inflight": plane.inflight_of(str(message["endpoint"]))}
    raise ValueError(f"unknown control message {op!r}")
