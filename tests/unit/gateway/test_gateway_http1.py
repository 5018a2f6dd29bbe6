"""Message translation across the proxy: hop-by-hop headers, forwarding headers, body framing."""

from __future__ import annotations

from juanie.engines.local.gateway.http1 import error_response, request_head, response_head


def _headers(head: bytes) -> dict[bytes, bytes]:
    lines = head.split(b"\r\n")[1:]
    return {k.lower(): v for k, _, v in (line.partition(b": ") for line in lines if line)}


def test_request_head_drops_hop_by_hop_and_adds_forwarding() -> None:
    head = request_head(
        b"POST",
        b"/pay?x=1",
        [(b"host", b"payment.localhost"), (b"connection", b"close"), (b"keep-alive", b"5"),
         (b"x-forwarded-for", b"10.1.1.1"), (b"content-length", b"4")],
        b"127.0.0.1",
        chunked=False,
    )  # fmt: skip
    assert head.startswith(b"POST /pay?x=1 HTTP/1.1\r\n")
    assert head.endswith(b"\r\n\r\n")
    headers = _headers(head)
    assert b"connection" not in headers and b"keep-alive" not in headers
    assert headers[b"x-forwarded-for"] == b"10.1.1.1, 127.0.0.1"
    assert headers[b"host"] == b"payment.localhost" and headers[b"content-length"] == b"4"
    assert len(headers[b"x-trace-id"]) == 32


def test_chunked_request_is_forwarded_chunked_without_length() -> None:
    head = request_head(b"PUT", b"/", [(b"content-length", b"9"), (b"transfer-encoding", b"chunked")], b"::1", True)
    headers = _headers(head)
    assert headers[b"transfer-encoding"] == b"chunked"
    assert b"content-length" not in headers


def _response(headers: list[tuple[bytes, bytes]], **kw: object):
    args = {"head_request": False, "client_http10": False, "client_keep_alive": True, "version": b"v1"}
    args.update(kw)
    return response_head(200, headers, **args)  # type: ignore[arg-type]


def test_response_with_length_passes_through() -> None:
    framing = _response([(b"Content-Length", b"5"), (b"Connection", b"keep-alive"), (b"X-App", b"1")])
    headers = _headers(framing.head)
    assert framing.head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert headers[b"content-length"] == b"5" and headers[b"x-app"] == b"1"
    assert headers[b"x-juanie-version"] == b"v1"
    assert b"connection" not in headers
    assert not framing.chunked_out and not framing.until_eof and framing.keep_alive


def test_chunked_or_close_delimited_bodies_are_rechunked_for_http11() -> None:
    chunked = _response([(b"Transfer-Encoding", b"chunked")])
    assert chunked.chunked_out and not chunked.until_eof
    assert _headers(chunked.head)[b"transfer-encoding"] == b"chunked"
    until_close = _response([(b"Content-Type", b"text/event-stream")])
    assert until_close.chunked_out and until_close.until_eof


def test_http10_client_gets_close_delimited_body() -> None:
    framing = _response([(b"Content-Type", b"text/plain")], client_http10=True)
    assert not framing.chunked_out and not framing.keep_alive
    assert _headers(framing.head)[b"connection"] == b"close"


def test_no_body_responses_need_no_framing() -> None:
    assert not _response([], head_request=True).chunked_out
    assert not response_head(
        204, [], head_request=False, client_http10=False, client_keep_alive=True, version=b"v"
    ).chunked_out


def test_error_response_is_json_with_length() -> None:
    raw = error_response(503, "no endpoints", keep_alive=False, extra={"route": "a/b"})
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable")
    assert _headers(head + b"\r\n")[b"content-length"] == str(len(body)).encode()
    assert b"connection: close" in head
    assert body == b'{"error": "no endpoints", "route": "a/b"}'
