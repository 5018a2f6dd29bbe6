"""The route table's schema: what the engine may PUT to the gateway, validated before anything changes.

Validation is pure and all-or-nothing: a table with one bad route is rejected whole, so the data plane never
serves half of an update. Errors name the field (`routes[0].backends[1].endpoints[0]`) and what was expected.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,252}$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,252})$")
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class RouteError(ValueError):
    """A route table the gateway refuses; the message says which field is wrong and what was expected."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_endpoint(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected an endpoint 'host:port' with a port 1..65535, got {value!r}")
    return value


class Backend(_Model):
    """One version of a service behind a route, with its share of the traffic and its replicas' addresses."""

    version: str = Field(min_length=1, max_length=128)
    track: str = Field(default="stable", min_length=1, max_length=64)
    weight: int = Field(default=0, ge=0, le=1_000_000)
    endpoints: tuple[str, ...] = ()

    @field_validator("endpoints")
    @classmethod
    def _endpoints(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_endpoint(v) for v in value)


class MatchRule(_Model):
    """Sends a request to a track when a header or a cookie has a value (testers forcing the canary)."""

    header: str | None = None
    cookie: str | None = None
    value: str
    track: str = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_key(self) -> MatchRule:
        if (self.header is None) == (self.cookie is None):
            raise ValueError("expected exactly one of 'header' or 'cookie'")
        if self.header is not None and not _HEADER.match(self.header):
            raise ValueError(f"expected a header name (token characters), got {self.header!r}")
        if self.cookie is not None and not self.cookie:
            raise ValueError("expected a non-empty cookie name")
        return self


class Fault(_Model):
    """Chaos for one route: delay every request, and answer a share of them with an error status."""

    delay_ms: int = Field(default=0, ge=0, le=600_000)
    abort_percent: float = Field(default=0, ge=0, le=100)
    abort_status: int = Field(default=503, ge=400, le=599)


class Route(_Model):
    """A service in an environment, reachable by host name and/or by a path prefix that is stripped."""

    name: str
    env: str = Field(min_length=1, max_length=128)
    service: str = Field(min_length=1, max_length=128)
    hosts: tuple[str, ...] = ()
    path_prefix: str | None = None
    timeout_seconds: float = Field(default=30, gt=0, le=3600)
    backends: tuple[Backend, ...] = ()
    match: tuple[MatchRule, ...] = ()
    fault: Fault = Fault()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"expected a route name of letters, digits, '.', '_', '-', '/', got {value!r}")
        return value

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for host in value:
            low = host.lower()
            if not _HOST.match(low):
                raise ValueError(f"expected a host name without port or scheme, got {host!r}")
            out.append(low)
        return tuple(out)

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith("/") or any(c in value for c in "?# "):
            raise ValueError(f"expected a path starting with '/' without query or spaces, got {value!r}")
        stripped = value.rstrip("/")
        return stripped or None

    @model_validator(mode="after")
    def _reachable(self) -> Route:
        if not self.hosts and self.path_prefix is None:
            raise ValueError(f"route {self.name!r}: expected at least one of 'hosts' or 'path_prefix'")
        return self


class RouteSet(_Model):
    routes: tuple[Route, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> RouteSet:
        seen: set[str] = set()
        claims: dict[tuple[str, str | None], str] = {}
        for route in self.routes:
            if route.name in seen:
                raise ValueError(f"route name {route.name!r} appears twice; names must be unique")
            seen.add(route.name)
            for host in route.hosts:
                key = (host, route.path_prefix)
                if key in claims:
                    raise ValueError(f"host {host!r} is claimed by routes {claims[key]!r} and {route.name!r}")
                claims[key] = route.name
            if route.path_prefix is not None:
                key = ("", route.path_prefix)
                if key in claims:
                    raise ValueError(
                        f"path prefix {route.path_prefix!r} is claimed by routes {claims[key]!r} and {route.name!r}"
                    )
                claims[key] = route.name
        return self


def _format(err: ValidationError) -> str:
    parts = []
    for item in err.errors()[:5]:
        loc = ""
        for piece in item["loc"]:
            loc += f"[{piece}]" if isinstance(piece, int) else (f".{piece}" if loc else str(piece))
        msg = str(item["msg"]).removeprefix("Value error, ")
        got = item.get("input")
        hint = f" (got {got!r})" if item["type"] != "value_error" and not isinstance(got, dict | list) else ""
        parts.append(f"{loc or 'body'}: {msg}{hint}")
    return "; ".join(parts)


def parse_routes(data: Any) -> tuple[Route, ...]:
    """Validate a `{"routes": [...]}` document into routes, or raise RouteError saying what is wrong."""
    if not isinstance(data, dict):
        raise RouteError(f'expected a JSON object {{"routes": [...]}}, got {type(data).__name__}')
    try:
        return RouteSet.model_validate(data).routes
    except ValidationError as err:
        raise RouteError(_format(err)) from None


def parse_fault(data: Any) -> Fault:
    """Validate a fault object (`delay_ms`, `abort_percent`, `abort_status`)."""
    if not isinstance(data, dict):
        raise RouteError(f"expected a JSON object with delay_ms/abort_percent/abort_status, got {type(data).__name__}")
    try:
        return Fault.model_validate(data)
    except ValidationError as err:
        raise RouteError(_format(err)) from None


def parse_weights(data: Any) -> dict[str, int]:
    """Validate a `{track: weight}` object."""
    if not isinstance(data, dict) or not data:
        raise RouteError('expected a non-empty JSON object of track -> weight, e.g. {"stable": 90, "canary": 10}')
    out: dict[str, int] = {}
    for track, weight in data.items():
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 1_000_000:
            raise RouteError(f"{track}: expected an integer weight 0..1000000, got {weight!r}")
        out[str(track)] = weight
    return out


def with_weights(route: Route, weights: dict[str, int]) -> Route:
    """Return the route with each backend of a named track set to that weight; unknown tracks are an error."""
    tracks = {b.track for b in route.backends}
    unknown = sorted(set(weights) - tracks)
    if unknown:
        raise RouteError(f"route {route.name!r} has no backend with track {unknown[0]!r}; tracks: {sorted(tracks)}")
    backends = tuple(
        b.model_copy(update={"weight": weights[b.track]}) if b.track in weights else b for b in route.backends
    )
    return route.model_copy(update={"backends": backends})


def routes_document(routes: tuple[Route, ...]) -> dict[str, Any]:
    """The JSON form of a table, as GET /routes returns it and routes.json stores it."""
    return {"routes": [r.model_dump(mode="json") for r in routes]}
