"""Server-side request forgery through the URLs people may set: a notification channel's webhook, an e-mail channel's
SMTP server, a project's Prometheus. Loopback, link-local (cloud metadata at 169.254.169.254), unspecified addresses
and the server's own ports are refused with a 4xx naming the reason — to a project's maintainer and to an
administrator alike — unless the administrator allow-listed them (JUANIE_ALLOWED_PRIVATE_URLS); a stored URL whose
host resolves to loopback when the message is sent is refused then too; and what a remote answered is never shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.observe_support import LOOPBACK_ALLOWED, Receiver, serve_receiver
from tests.security.observe_attack_support import member, running
from tests.server_support import Server

pytestmark = pytest.mark.timeout(300)
MARKER = "remote-body-MARKER-5120"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with serve_receiver() as found:
        yield found


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A server without an allow-list; mia maintains project alpha."""
    with running(tmp_path_factory.mktemp("strict") / "data") as server:
        server.ok("POST", "/api/projects", json={"name": "alpha"})
        yield server, member(server, "alpha", "mia", "maintainer")


@pytest.fixture(scope="module")
def allowing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A server whose administrator allowed 127.0.0.1 (the test's receivers); mia maintains project alpha."""
    with running(tmp_path_factory.mktemp("allowing") / "data", LOOPBACK_ALLOWED) as server:
        server.ok("POST", "/api/projects", json={"name": "alpha"})
        yield server, member(server, "alpha", "mia", "maintainer")


def _port(receiver: Receiver) -> int:
    return int(receiver.url.rsplit(":", 1)[1].split("/", 1)[0])


def _forbidden_urls(server: Server, receiver: Receiver) -> list[str]:
    port = _port(receiver)
    return [f"http://127.0.0.1:{port}/hook", "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            f"http://localhost:{port}/hook", f"http://[::1]:{port}/hook", f"http://[::ffff:127.0.0.1]:{port}/hook",
            f"http://0.0.0.0:{port}/hook", f"{server.url}/api/projects"]  # fmt: skip


def test_a_webhook_channel_to_loopback_or_metadata_is_refused(strict: tuple[Server, str], receiver: Receiver) -> None:
    server, mia = strict
    for token in (mia, server.token):
        for url in _forbidden_urls(server, receiver):
            response = server.api("PUT", "/api/projects/alpha/channels/hook", token=token,
                                  json={"kind": "webhook", "url": url})  # fmt: skip
            assert response.status_code == 422, (url, response.text)
            error = response.json()["error"]
            assert error["location"] == "url" and "refused" in error["message"], error
    assert server.ok("GET", "/api/projects/alpha/channels")["items"] == []
    assert receiver.requests == []


def test_a_prometheus_url_to_loopback_or_metadata_is_refused(strict: tuple[Server, str], receiver: Receiver) -> None:
    server, mia = strict
    for token in (mia, server.token):
        for url in _forbidden_urls(server, receiver):
            response = server.api("PUT", "/api/projects/alpha/observe", token=token, json={"prometheus_url": url})
            assert response.status_code == 422, (url, response.text)
            assert "refused" in response.json()["error"]["message"]
    assert server.ok("GET", "/api/projects/alpha/observe")["prometheus_url"] == ""


def test_an_smtp_channel_to_loopback_is_refused(strict: tuple[Server, str]) -> None:
    server, mia = strict
    for host in ("127.0.0.1", "localhost", "169.254.169.254", "::1"):
        body = {"kind": "email", "host": host, "port": 6379, "sender": "a@example.org", "recipients": ["b@example.org"]}
        response = server.api("PUT", "/api/projects/alpha/channels/mail", token=mia, json=body)
        assert response.status_code == 422 and response.json()["error"]["location"] == "host", response.text


def test_an_allow_listed_loopback_still_refuses_the_servers_own_port(allowing: tuple[Server, str]) -> None:
    server, mia = allowing
    for token in (mia, server.token):
        response = server.api("PUT", "/api/projects/alpha/channels/self", token=token,
                              json={"kind": "webhook", "url": f"{server.url}/api/system/down"})  # fmt: skip
        assert response.status_code == 422 and "own" in response.json()["error"]["message"], response.text


@pytest.mark.parametrize(
    ("kind", "status", "body"),
    [("webhook", 400, MARKER.encode()), ("webhook", 500, MARKER.encode()),
     ("dingtalk", 200, b'{"errcode": 310000, "errmsg": "' + MARKER.encode() + b'"}')],
)  # fmt: skip
def test_what_a_remote_answered_is_never_shown(
    allowing: tuple[Server, str], receiver: Receiver, kind: str, status: int, body: bytes
) -> None:
    server, mia = allowing
    receiver.body, receiver.script = body, [status] * 5
    try:
        server.ok("PUT", "/api/projects/alpha/channels/echo", token=mia, json={"kind": kind, "url": receiver.url})
        result = server.ok("POST", "/api/projects/alpha/channels/echo/test", token=mia)
    finally:
        receiver.body, receiver.script = b'{"ok": true}', []
    assert result["ok"] is False and result["status_code"] == status and result["error"], result
    assert MARKER not in str(result)
    events = server.api("GET", "/api/events", token=mia, params={"project": "alpha", "limit": 500}).text
    assert MARKER not in events


def test_a_stored_url_whose_host_resolves_to_loopback_is_refused_when_sending(
    tmp_path: Path, receiver: Receiver
) -> None:
    """The same data directory, first with loopback allowed (the channel is saved and delivers), then without: the
    stored `localhost` URL passes no validation any more, so only the check at connection time can stop it."""
    data = tmp_path / "data"
    url = f"http://localhost:{_port(receiver)}/hook"
    with running(data, {"JUANIE_ALLOWED_PRIVATE_URLS": "127.0.0.0/8,::1/128"}) as server:
        server.ok("POST", "/api/projects", json={"name": "alpha"})
        server.ok("PUT", "/api/projects/alpha/channels/hook", json={"kind": "webhook", "url": url})
        delivered = server.ok("POST", "/api/projects/alpha/channels/hook/test")
        assert delivered["ok"] is True, delivered
    before = len(receiver.requests)
    assert before >= 1
    with running(data) as server:
        refused = server.ok("POST", "/api/projects/alpha/channels/hook/test")
    assert refused["ok"] is False and refused["attempts"] == 1, refused
    assert "refused" in refused["error"] and "loopback" in refused["error"], refused
    assert len(receiver.requests) == before
