"""``PrometheusBackend``: the same ``query``/``query_range`` as the embedded engine, answered by a real Prometheus.

When a project configures a Prometheus URL, queries go there and come back in the identical ``QueryResult`` shape.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from juanie.observe.metrics.result import QueryResult


class QueryBackend(Protocol):
    """What rules, the judge and the UI need from a metrics source."""

    def query_range(self, expr: str, start: float, end: float, step: float) -> QueryResult: ...

    def query(self, expr: str, at: float) -> QueryResult: ...


class PrometheusError(RuntimeError):
    """Prometheus refused the query or could not be reached; the message is Prometheus's own when it gave one."""


class PrometheusBackend:
    """Sends queries to ``{url}/api/v1/query_range`` and ``/api/v1/query``."""

    def __init__(self, url: str, timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Prometheus URL must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._client = client or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def query_range(self, expr: str, start: float, end: float, step: float) -> QueryResult:
        return self._get("/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step})

    def query(self, expr: str, at: float) -> QueryResult:
        return self._get("/api/v1/query", {"query": expr, "time": at})

    def _get(self, path: str, params: dict[str, Any]) -> QueryResult:
        try:
            response = self._client.get(self.url + path, params=params)
        except httpx.HTTPError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {type(exc).__name__}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(
                f"Prometheus at {self.url} answered HTTP {response.status_code} with a non-JSON body"
            ) from None
        if response.status_code != 200 or body.get("status") != "success":
            message = body.get("error") or f"HTTP {response.status_code}"
            raise PrometheusError(
                f"Prometheus rejected {params['query']!r}: {body.get('errorType', 'error')}: {message}"
            )
        data = body.get("data")
        if not isinstance(data, dict) or "resultType" not in data:
            raise PrometheusError(f"Prometheus at {self.url} returned no data for {params['query']!r}")
        return QueryResult.from_dict(data)
