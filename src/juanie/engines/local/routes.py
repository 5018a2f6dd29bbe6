"""Gateway routes of an environment, computed from its workloads and which replicas are ready. Pure.

One route per application that a Service selects: `<namespace>/<service>`, reachable as
`<service>.<namespace>.localhost` and under `/<namespace>/<service>`. Each (track, version) is a backend; a
track's weight (from the HTTPRoute, or from `set_weights`) is shared among its versions in proportion to their
ready replicas, so a rolling update moves traffic replica by replica. Only ready replicas are endpoints. A
track without a ready replica gets weight 0 and its share goes to the tracks that can serve, so no request is
ever sent to a backend with nobody behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from juanie.engines.local.manifests import DesiredEnv, routed_services

DEFAULT_WEIGHTS = {"stable": 100, "canary": 0, "preview": 0}


@dataclass(frozen=True)
class ReadyEndpoint:
    workload: str
    version: str
    endpoint: str  # "127.0.0.1:PORT"


def _split(total: int, counts: list[int]) -> list[int]:
    """Split an integer weight in proportion to counts (largest remainder), summing exactly to `total`."""
    n = sum(counts)
    if n == 0:
        return [0] * len(counts)
    raw = [total * c / n for c in counts]
    out = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - out[i], reverse=True)
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def effective_weights(weights: dict[str, int], serving: set[str]) -> dict[str, int]:
    """Move the weight of tracks with no ready replica to the tracks that have one (stable first)."""
    out = {t: (w if t in serving else 0) for t, w in weights.items()}
    for t in serving:
        out.setdefault(t, 0)
    lost = sum(w for t, w in weights.items() if t not in serving)
    if lost and serving:
        heir = "stable" if "stable" in serving else sorted(serving)[0]
        out[heir] += lost
    if serving and sum(out.values()) == 0:
        out["stable" if "stable" in serving else sorted(serving)[0]] = 100
    return out


def env_routes(
    namespace: str,
    desired: DesiredEnv,
    ready: list[ReadyEndpoint],
    weights: dict[str, dict[str, int]],
) -> list[dict[str, Any]]:
    """The gateway route documents of one environment."""
    routes: list[dict[str, Any]] = []
    for service, workloads in sorted(routed_services(desired).items()):
        track_of = {w.name: w.track for w in workloads}
        # (track, version) -> endpoints
        groups: dict[tuple[str, str], list[str]] = {}
        for r in ready:
            if r.workload in track_of:
                groups.setdefault((track_of[r.workload], r.version), []).append(r.endpoint)
        route_spec = desired.routes.get(service)
        wanted = {**DEFAULT_WEIGHTS, **(route_spec.weights if route_spec else {})}
        wanted.update(weights.get(service, {}))
        serving = {t for (t, _), eps in groups.items() if eps}
        eff = effective_weights(wanted, serving)
        backends: list[dict[str, Any]] = []
        tracks = sorted({t for t, _ in groups} | {w.track for w in workloads})
        for track in tracks:
            versions = sorted(v for (t, v) in groups if t == track)
            shares = _split(eff.get(track, 0), [len(groups[(track, v)]) for v in versions])
            for version, share in zip(versions, shares, strict=True):
                backends.append(
                    {
                        "version": version,
                        "track": track,
                        "weight": share,
                        "endpoints": sorted(groups[(track, version)]),
                    }
                )
        hosts = [f"{service}.{namespace}.localhost".lower()]
        if route_spec:
            hosts += [h for h in route_spec.hostnames if h not in hosts]
        routes.append(
            {
                "name": f"{namespace}/{service}",
                "env": namespace,
                "service": service,
                "hosts": hosts,
                "path_prefix": f"/{namespace}/{service}",
                "timeout_seconds": route_spec.timeout_seconds if route_spec else 30,
                "backends": backends,
                "match": [
                    {"header": "x-juanie-track", "value": t, "track": t} for t in ("canary", "preview") if t in serving
                ],
            }
        )
    return routes


def one_owner_per_host(routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Routes in the order their environments claimed the gateway, each hostname kept by one namespace only.

    `<service>.<namespace>.localhost` always belongs to its namespace; any other hostname to the first namespace
    that asked for it. A later claim by another namespace is dropped, so one environment's HTTPRoute can never
    take another environment's traffic."""
    owner: dict[str, str] = {f"{r['service']}.{r['env']}.localhost".lower(): r["env"] for r in routes}
    out = []
    for route in routes:
        hosts = []
        for host in route["hosts"]:
            if owner.setdefault(host, route["env"]) == route["env"]:
                hosts.append(host)
        out.append(route if hosts == route["hosts"] else {**route, "hosts": hosts})
    return out


def comparable(route: dict[str, Any]) -> dict[str, Any]:
    """A route reduced to the fields the engine owns, for drift checks against what the gateway reports."""
    return {
        "name": route.get("name"),
        "hosts": sorted(route.get("hosts") or []),
        "path_prefix": route.get("path_prefix"),
        "backends": sorted(
            (
                (
                    b.get("track"),
                    b.get("version"),
                    int(b.get("weight") or 0),
                    tuple(sorted(b.get("endpoints") or [])),
                )
                for b in route.get("backends") or []
            ),
        ),
    }
