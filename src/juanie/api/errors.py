"""Every error leaves the API as `{"error": {"code", "message", "location"?}}` with a 4xx — a 500 only for bugs,
and then without internals."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from juanie.domain.errors import JuanieError

log = logging.getLogger("juanie.api")


def error_response(
    status: int,
    code: str,
    message: str,
    location: str | None = None,
    headers: dict[str, str] | None = None,
    **details: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if location:
        body["location"] = location
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


def _describe(err: dict[str, Any]) -> str:
    msg = err.get("msg", "invalid value")
    if err.get("type") == "json_invalid":
        return f"request body is not valid JSON: {err.get('ctx', {}).get('error', msg)}"
    if err.get("type") == "missing":
        return "field required"
    got = err.get("input")
    if got is not None and not isinstance(got, dict | list) and len(repr(got)) < 60:
        return f"{msg}, got {got!r}"
    return str(msg)


def install(app: FastAPI) -> None:
    @app.exception_handler(JuanieError)
    async def _juanie_error(_: Request, exc: JuanieError) -> JSONResponse:
        headers = {"Retry-After": str(exc.details["retry_after"])} if "retry_after" in exc.details else None
        return error_response(exc.status, exc.code, exc.message, exc.location, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        location = _location(first.get("loc", ()))
        message = f"{location}: {_describe(first)}" if location else _describe(first)
        problems = [{"location": _location(e.get("loc", ())), "message": _describe(e)} for e in errors[:20]]
        return error_response(422, "invalid_request", message, location or None, problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            409: "conflict",
            429: "rate_limited",
        }.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error; the server log has the details")
