"""The API caps request bodies while they arrive (api.body_limit): 1 MiB, 25 MiB for webhooks, then 413."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.security.limits_support import MiB, drain, parse_response, peak_growth
from tests.server_support import Server, start_server
from tests.support import wait_until


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real `juanie up` with the default limits."""
    started = start_server(tmp_path_factory.mktemp("body-limits") / "data")
    yield started
    started.stop()
    try:
        os.killpg(started.proc.pid, signal.SIGKILL)  # nothing it started outlives the module
    except ProcessLookupError:
        pass


def _refusal(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 413, (response.status_code, response.text[:300])
    return response.json()["error"]


def test_a_2_mib_json_post_is_refused_413_without_the_server_holding_it(server: Server) -> None:
    def post_four_at_once(body: bytes) -> list[httpx.Response]:  # a server that read them would hold all four
        json_body = {"content": body, "headers": {"Content-Type": "application/json"}}
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda _: server.api("POST", "/api/projects", **json_body), range(4)))

    post_four_at_once(b'{"name": "shop", "repo_url": 1}')  # warm up: connections, error paths (a 422 each)
    answers: list[httpx.Response] = []
    body = json.dumps({"name": "shop", "repo_url": "x" * (2 * MiB)}).encode()
    growth = peak_growth(server.proc.pid, lambda: answers.extend(post_four_at_once(body)))
    for answer in answers:
        error = _refusal(answer)
        assert error["code"] == "too_large" and error["location"] == "body"
        assert "1 MiB" in error["message"] and "JUANIE_MAX_BODY_BYTES" in error["message"]
    assert growth < 2 * MiB, f"the server's peak memory grew by {growth / MiB:.1f} MiB for bodies it refused"
    assert server.api("GET", "/api/projects").status_code == 200  # and it goes on serving


def test_a_chunked_body_over_the_cap_is_refused_413_while_it_streams(server: Server) -> None:
    host, port = "127.0.0.1", server.port
    head = (f"POST /api/projects HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {server.token}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()  # fmt: skip
    piece = b"x" * (64 * 1024)
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(head)
        for _ in range(18):  # 1.125 MiB: over the cap, and the body never ends (no last chunk is sent)
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        received = bytearray()
        wait_until(lambda: drain(sock, received) or parse_response(bytes(received)), timeout=15,
                   message="an answer before the body ended")  # fmt: skip
        answer = parse_response(bytes(received))
    assert answer is not None, bytes(received[:300])
    status, _, payload = answer
    assert status == 413
    assert json.loads(payload)["error"]["code"] == "too_large"


def test_a_30_mib_webhook_is_refused_413_and_a_2_mib_one_passes_the_cap(server: Server) -> None:
    signature = "sha256=" + "0" * 64  # well formed, and wrong: judged only after the body was read
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "limits-1", "Content-Type": "application/json",
               "X-Hub-Signature-256": signature}  # fmt: skip

    def deliver(size: int) -> httpx.Response:
        payload = json.dumps({"ref": "refs/heads/main", "after": "1" * 40, "padding": "x" * size}).encode()
        return httpx.post(f"{server.url}/api/hooks/git?project=shop", content=payload, headers=headers, timeout=60)

    error = _refusal(deliver(30 * MiB))
    assert error["code"] == "too_large" and "25 MiB" in error["message"]
    accepted = deliver(2 * MiB)  # over the API's 1 MiB, under the webhook cap: read, then judged on its signature
    assert accepted.status_code != 413 and accepted.status_code < 500, (accepted.status_code, accepted.text[:300])
