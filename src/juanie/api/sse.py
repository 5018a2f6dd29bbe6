"""Server-sent events: the wire format (pure) and a bounded polling loop that feeds a stream.

Both faces stream with it (the API's `follow` endpoints and the UI's live views), so it lives with the API, the
layer the web pages already build on.

The UI's live views poll the database by id cursor on the server side, once a second, and push what is new. A
stream lives at most `max_seconds`; the browser's EventSource then reconnects by itself and sends
`Last-Event-ID`, so nothing is lost and no connection is held forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

RETRY_MS = 2000


def format_message(data: str, *, event_id: int | None = None, event: str | None = None) -> str:
    """One SSE message. Each line of `data` becomes its own `data:` field, so payloads may span lines."""
    lines: list[str] = []
    if event:
        if any(c in event for c in "\r\n"):
            raise ValueError("an SSE event name cannot contain a line break")
        lines.append(f"event: {event}")
    if event_id is not None:
        lines.append(f"id: {event_id}")
    for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        lines.append(f"data: {line}")
    return "\n".join(lines) + "\n\n"


def comment(text: str = "") -> str:
    """A comment line: keeps proxies from closing an idle stream and lets the server notice a gone client."""
    return f": {text}\n\n"


def resume_point(last_event_id: str | None, after: int | None) -> int:
    """Where a stream starts: the browser's `Last-Event-ID` on reconnect wins over the page's `after`."""
    if last_event_id:
        try:
            value = int(last_event_id.strip())
        except ValueError:
            value = -1
        if value >= 0:
            return value
    return max(after or 0, 0)


@dataclass(frozen=True)
class Item:
    id: int
    payload: str


async def poll_stream(
    fetch: Callable[[int], Awaitable[Sequence[Item]]],
    *,
    after: int,
    disconnected: Callable[[], Awaitable[bool]],
    interval: float = 1.0,
    max_seconds: float = 300.0,
    heartbeat_seconds: float = 15.0,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[str]:
    """Yield SSE text for every item newer than the cursor, polling `fetch(cursor)` every `interval` seconds.

    Ends when the client goes away or after `max_seconds` (the client reconnects where it left off).
    """
    started = last_sent = clock()
    cursor = after
    yield f"retry: {RETRY_MS}\n\n"
    while clock() - started < max_seconds:
        if await disconnected():
            return
        items = await fetch(cursor)
        for item in items:
            cursor = max(cursor, item.id)
            yield format_message(item.payload, event_id=item.id)
            last_sent = clock()
        if clock() - last_sent >= heartbeat_seconds:
            yield comment("keep-alive")
            last_sent = clock()
        await asyncio.sleep(interval)


async def with_heartbeat(
    source: AsyncIterator[str],
    disconnected: Callable[[], Awaitable[bool]],
    heartbeat_seconds: float = 15.0,
) -> AsyncIterator[str]:
    """Relay `source`, adding a comment when it is quiet for `heartbeat_seconds` and ending when the client left.

    A follow stream that only looks for a gone client when it has something to send would tail files forever
    for a closed tab on a quiet environment; the heartbeat gives it a moment to look, and keeps proxies from
    closing the idle stream.
    """
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=256)

    async def pump() -> None:
        try:
            async for text in source:
                await queue.put(text)
        finally:
            await queue.put(None)

    task = asyncio.create_task(pump())
    try:
        while True:
            try:
                text = await asyncio.wait_for(queue.get(), heartbeat_seconds)
            except TimeoutError:
                if await disconnected():
                    return
                yield comment("keep-alive")
                continue
            if text is None:
                return
            if await disconnected():
                return
            yield text
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
