"""Where a request goes: the compiled route table and the pure choices made per request.

`RouteTable` is built once per PUT and then only read, so a reload is a single reference swap: requests that
already chose a backend keep it, new requests see the new table. Every choice here is a pure function of the
table, the request and a random number, which keeps the statistics testable without sockets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from juanie.engines.local.gateway.routes import Backend, Route


@dataclass(frozen=True, slots=True)
class CompiledBackend:
    backend: Backend
    endpoints: tuple[str, ...]
    weight: int
    key: tuple[str, str, str]  # (env, service, version): the statistics series of this backend
    version: bytes  # for the X-Juanie-Version response header


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    route: Route
    backends: tuple[CompiledBackend, ...]
    total_weight: int
    header_rules: tuple[tuple[bytes, bytes, str], ...]  # (lower-case header name, value, track)
    cookie_rules: tuple[tuple[str, str, str], ...]  # (cookie name, value, track)
    only: CompiledBackend | None  # the one backend taking all traffic when there is no choice to make


@dataclass(frozen=True, slots=True)
class Match:
    route: CompiledRoute
    path: bytes  # the path to forward (prefix stripped when the route was found by its prefix)


def _compile(route: Route) -> CompiledRoute:
    backends = tuple(
        CompiledBackend(
            b, b.endpoints, b.weight if b.endpoints else 0, (route.env, route.service, b.version), b.version.encode()
        )
        for b in route.backends
    )
    headers = tuple(
        (r.header.lower().encode("latin-1"), r.value.encode("latin-1"), r.track)
        for r in route.match
        if r.header is not None
    )
    cookies = tuple((r.cookie, r.value, r.track) for r in route.match if r.cookie is not None)
    weighted = [b for b in backends if b.weight > 0]
    only = weighted[0] if len(weighted) == 1 and not headers and not cookies else None
    return CompiledRoute(route, backends, sum(b.weight for b in backends), headers, cookies, only)


def _under(path: bytes, prefix: bytes) -> bool:
    """`/a/b` is under `/a` and `/a`, but `/ab` is not: prefixes match whole path segments."""
    if not path.startswith(prefix):
        return False
    return len(path) == len(prefix) or path[len(prefix)] in b"/?"


def strip_prefix(target: bytes, prefix: bytes) -> bytes:
    """Remove a matched prefix from a request target, keeping the query: `/p/x?q` -> `/x?q`, `/p` -> `/`."""
    rest = target[len(prefix) :]
    if not rest or rest[:1] == b"?":
        return b"/" + rest
    return rest


class RouteTable:
    """An immutable lookup structure: host first, then the longest path prefix; the path form as fallback."""

    def __init__(self, routes: tuple[Route, ...] = ()) -> None:
        self.routes = routes
        self.by_name: dict[str, CompiledRoute] = {}
        by_host: dict[bytes, list[tuple[bytes, CompiledRoute]]] = {}
        by_prefix: list[tuple[bytes, CompiledRoute]] = []
        for route in routes:
            compiled = _compile(route)
            self.by_name[route.name] = compiled
            prefix = (route.path_prefix or "").encode()
            for host in route.hosts:
                by_host.setdefault(host.encode(), []).append((prefix, compiled))
            if route.path_prefix:
                by_prefix.append((prefix, compiled))
        self._by_host = {h: sorted(v, key=lambda p: -len(p[0])) for h, v in by_host.items()}
        self._by_prefix = sorted(by_prefix, key=lambda p: -len(p[0]))
        self.endpoints = frozenset(e for r in routes for b in r.backends for e in b.endpoints)

    def lookup(self, host: bytes, target: bytes) -> Match | None:
        """Find the route for a Host header (port ignored) and a request target; None when nothing matches.

        A route found by host gets the whole path unless one of the host's routes claims a prefix of it (then
        that prefix is stripped); without a host match, the longest path prefix over all routes wins.
        """
        name = host.split(b":", 1)[0].lower() if host else b""
        candidates = self._by_host.get(name)
        if candidates:
            for prefix, route in candidates:
                if prefix and _under(target, prefix):
                    return Match(route, strip_prefix(target, prefix))
            for prefix, route in candidates:
                if not prefix:
                    return Match(route, target)
            return Match(candidates[-1][1], target)
        for prefix, route in self._by_prefix:
            if _under(target, prefix):
                return Match(route, strip_prefix(target, prefix))
        return None


def cookie_value(cookie_header: bytes, name: str) -> str | None:
    """The value of one cookie in a `Cookie:` header, or None."""
    for part in cookie_header.decode("latin-1").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


def forced_track(route: CompiledRoute, headers: Mapping[bytes, bytes]) -> str | None:
    """The track a match rule forces for these headers (lower-case names), or None."""
    for name, value, track in route.header_rules:
        if headers.get(name) == value:
            return track
    if route.cookie_rules:
        cookie = headers.get(b"cookie")
        if cookie:
            for name, value, track in route.cookie_rules:
                if cookie_value(cookie, name) == value:
                    return track
    return None


def choose_backend(route: CompiledRoute, track: str | None, rnd: float) -> CompiledBackend | None:
    """Pick a backend: the forced track when it has endpoints, else weighted by `rnd` in [0, 1)."""
    if track is not None:
        for backend in route.backends:
            if backend.backend.track == track and backend.endpoints:
                return backend
    if route.total_weight <= 0:
        return None
    point = rnd * route.total_weight
    for backend in route.backends:
        if point < backend.weight:
            return backend
        point -= backend.weight
    for backend in reversed(route.backends):  # float rounding at the top end
        if backend.weight:
            return backend
    return None


def pick_endpoint(
    endpoints: tuple[str, ...],
    inflight: Callable[[str], int],
    start: int,
    exclude: frozenset[str] = frozenset(),
) -> str | None:
    """Least in-flight endpoint, ties broken round-robin from `start`; excluded ones only as a last resort."""
    n = len(endpoints)
    if n == 0:
        return None
    best: str | None = None
    best_load = 0
    for i in range(n):
        endpoint = endpoints[(start + i) % n]
        if endpoint in exclude:
            continue
        load = inflight(endpoint)
        if best is None or load < best_load:
            best, best_load = endpoint, load
            if load == 0:
                break
    if best is None:
        best = endpoints[start % n]
    return best
