"""The SSE wire format and the bounded polling loop behind the live views."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from juanie.api import sse


def test_format_message_splits_lines_and_carries_the_id() -> None:
    assert (
        sse.format_message("a\nb\r\nc", event_id=7, event="row") == "event: row\nid: 7\ndata: a\ndata: b\ndata: c\n\n"
    )
    with pytest.raises(ValueError, match="line break"):
        sse.format_message("x", event="bad\nname")


@pytest.mark.parametrize(
    ("header", "after", "expected"),
    [("42", 5, 42), (None, 5, 5), ("", None, 0), ("junk", 9, 9), ("-3", 2, 2)],
)
def test_resume_point_prefers_last_event_id(header: str | None, after: int | None, expected: int) -> None:
    assert sse.resume_point(header, after) == expected


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_poll_stream_sends_new_items_once_in_order_and_stops_at_its_time_limit() -> None:
    clock = FakeClock()
    log = [sse.Item(i, f"row {i}") for i in range(1, 6)]
    asked: list[int] = []

    async def fetch(cursor: int) -> Sequence[sse.Item]:
        asked.append(cursor)
        clock.now += 1.0  # each poll takes a simulated second
        return [item for item in log if item.id > cursor][:2]

    async def connected() -> bool:
        return False

    chunks = [
        chunk
        async for chunk in sse.poll_stream(
            fetch,
            after=1,
            disconnected=connected,
            interval=0,
            max_seconds=5,
            heartbeat_seconds=100,
            clock=clock,
        )
    ]
    assert chunks[0] == f"retry: {sse.RETRY_MS}\n\n"
    ids = [int(c.split("id: ")[1].split("\n")[0]) for c in chunks if c.startswith("id:")]
    assert ids == [2, 3, 4, 5]
    assert asked[:3] == [1, 3, 5]
    assert len(asked) == 5  # bounded by max_seconds, not by the data


async def test_poll_stream_ends_when_the_client_goes_away_and_sends_heartbeats() -> None:
    clock = FakeClock()
    polls = 0

    async def fetch(cursor: int) -> Sequence[sse.Item]:
        nonlocal polls
        polls += 1
        clock.now += 10
        return []

    async def gone() -> bool:
        return polls >= 3

    chunks = [
        c
        async for c in sse.poll_stream(
            fetch, after=0, disconnected=gone, interval=0, max_seconds=1000, heartbeat_seconds=15, clock=clock
        )
    ]
    assert polls == 3
    assert chunks.count(sse.comment("keep-alive")) >= 1


async def test_a_quiet_follow_stream_sends_heartbeats_and_ends_when_the_client_left() -> None:
    """A tail with nothing new must still notice a closed tab, and must not leave its source running."""
    finished = asyncio.Event()
    gone = False

    async def quiet() -> AsyncIterator[str]:
        try:
            yield "data: first\n\n"
            await asyncio.sleep(3600)
            yield "data: never\n\n"
        finally:
            finished.set()

    async def disconnected() -> bool:
        return gone

    seen: list[str] = []
    async for text in sse.with_heartbeat(quiet(), disconnected, heartbeat_seconds=0.05):
        seen.append(text)
        if len(seen) == 3:
            gone = True
    assert seen[0] == "data: first\n\n"
    assert seen[1:] == [sse.comment("keep-alive")] * 2
    await asyncio.wait_for(finished.wait(), 2)


async def test_a_finished_source_ends_the_stream() -> None:
    async def two() -> AsyncIterator[str]:
        yield "a"
        yield "b"

    async def never() -> bool:
        return False

    assert [t async for t in sse.with_heartbeat(two(), never, heartbeat_seconds=5)] == ["a", "b"]
