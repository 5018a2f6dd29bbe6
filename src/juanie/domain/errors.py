"""User-facing errors as values: a code, a one-line message, where it happened. The API maps them to 4xx.

Tracebacks are for bugs; everything a user can cause is one of these.
"""

from __future__ import annotations

from typing import Any


class JuanieError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, location: str | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        self.location = location
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.location:
            body["location"] = self.location
        if self.details:
            body["details"] = self.details
        return body


class Invalid(JuanieError):
    code, status = "invalid", 422


class NotFound(JuanieError):
    code, status = "not_found", 404


class Conflict(JuanieError):
    code, status = "conflict", 409


class Forbidden(JuanieError):
    code, status = "forbidden", 403


class Unauthorized(JuanieError):
    code, status = "unauthorized", 401


class RateLimited(JuanieError):
    code, status = "rate_limited", 429
