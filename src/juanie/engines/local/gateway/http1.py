"""HTTP/1.1 pieces the proxy writes: forwarded request heads, response heads, the gateway's own errors.

Pure byte-building functions: they decide which headers cross the proxy (hop-by-hop ones never do, RFC 9110
section 7.6.1) and how bodies are framed, so the protocol classes only move bytes.
"""

from __future__ import annotations

import json
import random
from http import HTTPStatus
from typing import NamedTuple

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)

_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
STATUS_LINES = {code: b"HTTP/1.1 %d %s\r\n" % (code, phrase) for code, phrase in _REASONS.items()}


def header_fields(head: bytes) -> list[tuple[bytes, bytes]]:
    """The fields of a complete, already validated request head, names lower-cased (as the parser path has them).

    Only for heads the fast path took (`fast.parse_request`), whose grammar it checked: one field per CRLF line.
    """
    fields = []
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            fields.append((name.lower(), value.strip(b" \t")))
    return fields


def reason(status: int) -> bytes:
    """The standard reason phrase (backends' own phrases are not kept: clients must not depend on them)."""
    return _REASONS.get(status, b"Unknown")


def new_trace_id() -> bytes:
    """128 random bits as 32 hex digits (the W3C trace-id shape); not a secret, so no syscall per request."""
    return b"%032x" % random.getrandbits(128)


def request_head(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], client_ip: bytes, chunked: bool
) -> bytes:
    """The head sent to a backend: the client's headers minus hop-by-hop ones, plus forwarding headers.

    `headers` have lower-case names. X-Forwarded-For gets the client appended; X-Trace-Id is generated
    when the client sent none, so every request can be followed through the backend's logs.
    """
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    forwarded_for = b""
    has_trace = False
    for name, value in headers:
        if name in HOP_BY_HOP:
            continue
        if name == b"x-forwarded-for":
            forwarded_for = value
            continue
        if name == b"content-length" and chunked:
            continue
        if name == b"x-trace-id":
            has_trace = True
        parts.append(name + b": " + value + b"\r\n")
    parts.append(b"x-forwarded-for: " + (forwarded_for + b", " + client_ip if forwarded_for else client_ip))
    parts.append(b"\r\nx-forwarded-proto: http\r\n")
    if not has_trace:
        parts.append(b"x-trace-id: " + new_trace_id() + b"\r\n")
    if chunked:
        parts.append(b"transfer-encoding: chunked\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


class ResponseFraming(NamedTuple):
    head: bytes
    chunked_out: bool  # re-frame the body as chunks towards the client
    until_eof: bool  # the backend delimits the body by closing the connection
    keep_alive: bool  # the client connection may carry another request


def response_head(
    status: int,
    headers: list[tuple[bytes, bytes]],
    *,
    head_request: bool,
    client_http10: bool,
    client_keep_alive: bool,
    version: bytes,
) -> ResponseFraming:
    """Translate a backend's response head for the client, choosing the body framing towards it.

    Bodies with a length pass as they are; chunked or close-delimited bodies are sent chunked to HTTP/1.1
    clients (the parser de-chunks them) and close-delimited to HTTP/1.0 clients.
    """
    parts = [STATUS_LINES.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status]
    length: bytes | None = None
    upstream_chunked = False
    for name, value in headers:
        low = name.lower()
        if low in HOP_BY_HOP:
            if low == b"transfer-encoding" and b"chunked" in value.lower():
                upstream_chunked = True
            continue
        if low == b"content-length":
            length = value
            continue
        parts.append(name + b": " + value + b"\r\n")
    no_body = head_request or status in (204, 304) or status < 200
    chunked_out = until_eof = False
    keep_alive = client_keep_alive
    if length is not None and not upstream_chunked:
        parts.append(b"content-length: " + length + b"\r\n")
    elif not no_body:
        until_eof = not upstream_chunked
        if client_http10:
            keep_alive = False
        else:
            chunked_out = True
            parts.append(b"transfer-encoding: chunked\r\n")
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    elif client_http10:
        parts.append(b"connection: keep-alive\r\n")
    parts.append(b"x-juanie-version: " + version + b"\r\n\r\n")
    return ResponseFraming(b"".join(parts), chunked_out, until_eof, keep_alive)


def error_response(status: int, message: str, keep_alive: bool, extra: dict[str, object] | None = None) -> bytes:
    """A small JSON answer produced by the gateway itself (404 no route, 502, 503, 504, fault aborts)."""
    body = json.dumps({"error": message, **(extra or {})}).encode()
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n" % (
        status,
        _REASONS.get(status, b"Error"),
        len(body),
    )
    if not keep_alive:
        head += b"connection: close\r\n"
    return head + b"\r\n" + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
