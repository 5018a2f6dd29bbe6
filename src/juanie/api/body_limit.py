"""Request bodies are capped while they arrive, before any handler holds them in memory.

Every request may carry at most `Settings.max_body_bytes` (1 MiB, `JUANIE_MAX_BODY_BYTES`); webhooks
(`/api/hooks/...`) at most `Settings.max_webhook_body_bytes` (25 MiB, `JUANIE_MAX_WEBHOOK_BODY_BYTES`, what GitHub
itself caps a delivery at). A declared `Content-Length` over the cap is answered 413 before one byte of the body is
read; a body without one (chunked) is counted as it streams through `receive`, and answered 413 the moment it
passes the cap. Either way the server then discards the rest as it arrives, so no more than the cap plus one read
is ever held. The answer is the API's error format: `{"error": {"code": "too_large", "message", "location"}}`.

A pure ASGI middleware, not Starlette's BaseHTTPMiddleware: that one would run the app in a separate task and
buffer what passes between them, which is exactly what must not happen here.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from juanie.api.errors import error_response

WEBHOOK_PREFIX = "/api/hooks/"


class _BodyTooLarge(Exception):
    """Raised into the app from `receive` when a streamed body passes the cap (its 413 is already out)."""


def _size(n: int) -> str:
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """The declared Content-Length, and whether a body may come without one (a transfer coding)."""
    length, coded = None, False
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit():  # the HTTP server already refused malformed ones
            length = int(value)
        elif name == b"transfer-encoding":
            coded = True
    return length, coded


class BodyLimitMiddleware:
    """Answer 413 for a request body over its cap (see the module docstring)."""

    def __init__(self, app: ASGIApp, max_bytes: int, webhook_max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.webhook_max_bytes = webhook_max_bytes

    def _refusal(self, path: str, limit: int) -> Response:
        what, variable = (
            ("webhook", "JUANIE_MAX_WEBHOOK_BODY_BYTES") if path.startswith(WEBHOOK_PREFIX)
            else ("request", "JUANIE_MAX_BODY_BYTES")
        )  # fmt: skip
        message = f"{what} body is larger than {_size(limit)} (the server's limit, set by ${variable})"
        return error_response(413, "too_large", message, "body", limit_bytes=limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.webhook_max_bytes if path.startswith(WEBHOOK_PREFIX) else self.max_bytes
        declared, coded = _framing(scope)
        if declared is not None and declared > limit:
            await self._refusal(path, limit)(scope, receive, send)
            return
        if not coded:  # no body, or no more than the declared length: the HTTP server holds it to that
            await self.app(scope, receive, send)
            return
        received = 0
        started = refused = False

        async def capped_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started:
                        refused = True
                        await self._refusal(path, limit)(scope, receive, send)
                    raise _BodyTooLarge(f"request body over {limit} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:  # the 413 is out: whatever the app answers to its failed read goes nowhere
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, capped_receive, guarded_send)
        except _BodyTooLarge:
            pass  # refused, or the response had started: then the server closes the unfinished response
        except Exception:
            if not refused:  # after a refusal the app may fail in its own way on the read it lost: expected
                raise
