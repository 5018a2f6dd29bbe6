"""Fixtures for observe in the running server: a real HTTP receiver and a real SMTP server on 127.0.0.1, and
cleanup of every process a test's data directory started."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.observe_support import Receiver, serve_receiver
from tests.support import free_port


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """One receiver for the whole module: the module's server is given its URL once, as a channel."""
    with serve_receiver() as found:
        yield found


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[Any] = field(default_factory=list)


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) that keeps every message it accepts."""
    from aiosmtpd.controller import Controller

    box = Mailbox("127.0.0.1", free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.messages.append(envelope)
            return "250 OK"

    controller = Controller(Handler(), hostname=box.host, port=box.port)
    controller.start()
    yield box
    controller.stop()
