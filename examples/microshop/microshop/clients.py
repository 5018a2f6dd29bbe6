"""HTTP calls from the order service to user, product and payment, with the trace id propagated.

Failures of a downstream service are turned into :class:`ApiError` values that name the service, its URL and
what went wrong, so an order that cannot be placed says *why* (``product service unreachable at …``).
"""

from __future__ import annotations

from typing import Any

import httpx

from microshop.logs import current_trace_id
from microshop.validation import ApiError


class Downstream:
    """One service the order service depends on, reached at ``base_url``."""

    def __init__(self, name: str, base_url: str, client: httpx.AsyncClient | None = None) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.client = client  # set when the app starts, so the pool lives on the serving event loop

    async def request(self, method: str, path: str, json: dict[str, Any] | None = None) -> httpx.Response:
        url = f"{self.base_url}{path}"
        if self.client is None:
            raise ApiError(503, "not_started", f"{self.name} client is not open; the service is starting or stopping")
        try:
            return await self.client.request(method, url, json=json, headers={"X-Trace-Id": current_trace_id()})
        except httpx.TimeoutException:
            raise ApiError(504, "upstream_timeout", f"{self.name} service did not answer in time at {url}") from None
        except httpx.HTTPError as exc:
            raise ApiError(
                503, "upstream_unavailable", f"{self.name} service unreachable at {self.base_url}: {exc}"
            ) from None

    async def get_json(self, path: str, *, missing: str) -> dict[str, Any]:
        """GET ``path``; a 404 becomes a 422 with ``missing`` as its message (a dangling reference)."""
        response = await self.request("GET", path)
        if response.status_code == 404:
            raise ApiError(422, "invalid_reference", missing)
        if response.status_code != 200:
            raise ApiError(502, "upstream_error", f"{self.name} service answered {response.status_code} for GET {path}")
        return json_body(response, self.name)


def json_body(response: httpx.Response, service: str) -> dict[str, Any]:
    """The JSON object in ``response``, or a 502 naming ``service``."""
    try:
        value = response.json()
    except ValueError:
        raise ApiError(502, "upstream_error", f"{service} service answered with a body that is not JSON") from None
    if not isinstance(value, dict):
        raise ApiError(502, "upstream_error", f"{service} service answered with JSON that is not an object")
    return value
