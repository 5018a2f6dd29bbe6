"""The notifier against real servers on 127.0.0.1: retries, permanent failures, redaction, SMTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from juanie.observe.alerts.dispatcher import Notification
from juanie.observe.alerts.model import Alert
from juanie.observe.notify import EmailChannel, HttpChannel, Notifier

NOTE = Notification(
    "web",
    "{}:{}",
    {"alertname": "Down"},
    (Alert({"alertname": "Down", "service": "pay"}, {"summary": "pay is down"}, 1000.0),),
    "firing",
    1010.0,
)


def fast_notifier(**kw: object) -> Notifier:
    return Notifier(max_attempts=4, backoff_base=0.01, backoff_max=0.05, **kw)  # type: ignore[arg-type]


async def test_retries_on_503_until_success(http_receiver) -> None:
    http_receiver.script = [503, 503]
    notifier = fast_notifier()
    record = await notifier.send(HttpChannel("hook", "webhook", http_receiver.url), NOTE)
    await notifier.aclose()
    assert (record.ok, record.attempts, record.status_code, record.error) == (True, 3, 200, None)
    assert [r["status"] for r in http_receiver.requests] == [503, 503, 200]
    assert http_receiver.bodies()[-1]["version"] == "4"


async def test_does_not_retry_a_4xx(http_receiver) -> None:
    http_receiver.script = [400]
    notifier = fast_notifier()
    record = await notifier.send(HttpChannel("hook", "webhook", http_receiver.url), NOTE)
    await notifier.aclose()
    assert (record.ok, record.attempts, record.status_code) == (False, 1, 400)
    assert len(http_receiver.requests) == 1


async def test_gives_up_after_max_attempts_and_redacts_the_url(http_receiver) -> None:
    http_receiver.script = [500] * 10
    secret_url = http_receiver.url + "/T0/B0/supersecret?access_token=tok123"
    notifier = fast_notifier()
    record = await notifier.send(HttpChannel("slack", "slack", secret_url), NOTE)
    await notifier.aclose()
    assert (record.ok, record.attempts, record.status_code) == (False, 4, 500)
    assert "supersecret" not in repr(record) and "tok123" not in repr(record)
    assert record.target.endswith("/hook/***?access_token=***")


async def test_timeouts_and_refused_connections_are_retried(http_receiver) -> None:
    http_receiver.delay = 0.5
    notifier = Notifier(max_attempts=2, backoff_base=0.01)
    record = await notifier.send(HttpChannel("hook", "webhook", http_receiver.url, timeout=0.1), NOTE)
    assert (record.ok, record.attempts) == (False, 2) and "timed out" in (record.error or "")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/x"
    record = await notifier.send(HttpChannel("hook", "webhook", dead), NOTE)
    await notifier.aclose()
    assert (record.ok, record.attempts) == (False, 2) and "cannot connect" in (record.error or "")


async def test_dingtalk_errcode_is_a_permanent_failure_and_signing_adds_query(http_receiver) -> None:
    http_receiver.body = b'{"errcode": 310000, "errmsg": "sign not match"}'
    notifier = fast_notifier(clock=lambda: 1_714_564_800.5)
    record = await notifier.send(
        HttpChannel("ding", "dingtalk", http_receiver.url + "?access_token=t", secret="S"), NOTE
    )
    await notifier.aclose()
    assert (record.ok, record.attempts) == (False, 1) and "errcode 310000" in (record.error or "")
    path = http_receiver.requests[0]["path"]
    assert "timestamp=1714564800500" in path and "sign=" in path
    assert http_receiver.bodies()[0]["msgtype"] == "markdown"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, list]]:
    received: list = []

    class Collect(Message):
        def handle_message(self, message) -> None:  # type: ignore[no-untyped-def]
            received.append(message)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, received
    controller.stop()


async def test_email_reaches_a_real_smtp_server(smtp_server, wait_until) -> None:
    controller, received = smtp_server
    channel = EmailChannel("mail", "127.0.0.1", controller.port, "juanie@example.org", ("ops@example.org",))
    notifier = fast_notifier()
    record = await notifier.send(channel, NOTE)
    await notifier.aclose()
    assert record.ok and record.attempts == 1 and record.target == f"smtp://127.0.0.1:{controller.port}"
    wait_until(lambda: received, message="the SMTP server to receive the message")
    (message,) = received
    assert message["Subject"] == "[FIRING:1] Down"
    assert message["To"] == "ops@example.org"
    assert "pay is down" in message.as_string()


async def test_email_to_a_dead_server_fails_after_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    notifier = Notifier(max_attempts=2, backoff_base=0.01)
    record = await notifier.send(EmailChannel("mail", "127.0.0.1", port, "a@b.c", ("d@e.f",), password="pw"), NOTE)
    assert (record.ok, record.attempts) == (False, 2) and "pw" not in repr(record)
