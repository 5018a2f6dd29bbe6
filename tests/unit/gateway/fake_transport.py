"""An in-memory asyncio transport for driving the gateway's protocols without sockets."""

from __future__ import annotations

import asyncio
from typing import Any

CLIENT = ("10.1.2.3", 40000)


class FakeTransport(asyncio.Transport):
    """Collects what is written and remembers whether the protocol paused reading or closed it."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closing = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return CLIENT if name == "peername" else default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True
