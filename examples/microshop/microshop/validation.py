"""Request validation as pure functions that raise :class:`ApiError` with a message a client can act on.

Each error says which field was wrong, what was expected and what was received, e.g.
``price_cents: expected an integer >= 0, got "ten"``.
"""

from __future__ import annotations

import json
from typing import Any

CURRENCIES = ("EUR", "USD", "GBP")


class ApiError(Exception):
    """An error answered as ``{"error": {"code": ..., "message": ...}}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying why it is not one."""
    if not raw.strip():
        raise ApiError(400, "invalid_body", "request body is empty; expected a JSON object")
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_body", f"request body must be a JSON object, got {type(value).__name__}")
    return value


def require_str(body: dict[str, Any], name: str, *, max_length: int = 200, contains: str = "") -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(422, "invalid_field", f"{name}: expected a non-empty string, got {_shown(value)}")
    value = value.strip()
    if len(value) > max_length:
        raise ApiError(422, "invalid_field", f"{name}: expected at most {max_length} characters, got {len(value)}")
    if contains and contains not in value:
        raise ApiError(422, "invalid_field", f"{name}: expected a value containing {contains!r}, got {_shown(value)}")
    return value


def require_int(body: dict[str, Any], name: str, *, minimum: int = 0, maximum: int = 10**12) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ApiError(
            422,
            "invalid_field",
            f"{name}: expected an integer between {minimum} and {maximum}, got {_shown(value)}",
        )
    return value


def path_id(raw: str, what: str) -> int:
    """A positive integer id from the URL path, or a 404 (an id that cannot exist is simply not found)."""
    if not raw.isdigit() or int(raw) < 1 or int(raw) > 2**63 - 1:
        raise ApiError(404, "not_found", f"{what} {raw!r} not found; ids are positive integers")
    return int(raw)


def require_currency(body: dict[str, Any], name: str = "currency") -> str:
    """An ISO currency code microshop accepts; EUR when the field is absent."""
    value = body.get(name, "EUR")
    if not isinstance(value, str) or value.upper() not in CURRENCIES:
        raise ApiError(422, "invalid_field", f"{name}: expected one of {', '.join(CURRENCIES)}, got {_shown(value)}")
    return value.upper()
