"""``PrometheusBackend``: the same ``query``/``query_range`` as the embedded engine, answered by a real Prometheus.

When a project configures a Prometheus URL, queries go there and come back in the identical ``QueryResult`` shape.
The URL is a user's, so connections go through ``juanie.egress`` (no loopback, link-local or the server's own ports
unless allow-listed), and an error never repeats what the remote answered: only its status code and, from a real
Prometheus, its ``errorType``. A project's queries reach it through ``scoping.ScopedBackend``.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from juanie.egress import EgressPolicy, EgressRefused, guarded_client
from juanie.observe.metrics.result import QueryResult

# Prometheus's own error types (its API documentation); anything else a remote sends is not repeated.
_ERROR_TYPES = frozenset({"bad_data", "execution", "timeout", "canceled", "internal", "unavailable", "not_found"})


class QueryBackend(Protocol):
    """What rules, the judge and the UI need from a metrics source."""

    def query_range(self, expr: str, start: float, end: float, step: float) -> QueryResult: ...

    def query(self, expr: str, at: float) -> QueryResult: ...


class PrometheusError(RuntimeError):
    """Prometheus refused the query or could not be reached: the status code and error type, never its body."""


class PrometheusBackend:
    """Sends queries to ``{url}/api/v1/query_range`` and ``/api/v1/query``."""

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        """Without ``client``, connections follow ``egress`` (default: ``JUANIE_ALLOWED_PRIVATE_URLS``)."""
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Prometheus URL must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._client = client or guarded_client(egress or EgressPolicy.from_env(), timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def query_range(self, expr: str, start: float, end: float, step: float) -> QueryResult:
        return self._get("/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step})

    def query(self, expr: str, at: float) -> QueryResult:
        return self._get("/api/v1/query", {"query": expr, "time": at})

    def _get(self, path: str, params: dict[str, Any]) -> QueryResult:
        try:
            response = self._client.get(self.url + path, params=params)
        except EgressRefused as exc:
            raise PrometheusError(f"cannot query Prometheus at {exc}") from None
        except httpx.HTTPError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PrometheusError(
                f"Prometheus at {self.url} answered HTTP {response.status_code} without a Prometheus API answer"
            )
        if response.status_code != 200 or body.get("status") != "success":
            kind = body.get("errorType")
            kind = f" ({kind})" if isinstance(kind, str) and kind in _ERROR_TYPES else ""
            raise PrometheusError(
                f"Prometheus at {self.url} rejected {params['query']!r}: HTTP {response.status_code}{kind}"
            )
        data = body.get("data")
        if not isinstance(data, dict) or "resultType" not in data:
            raise PrometheusError(f"Prometheus at {self.url} returned no data for {params['query']!r}")
        return QueryResult.from_dict(data)
