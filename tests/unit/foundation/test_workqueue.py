"""The controller work queue: dedup, no concurrent processing of one key, backoff."""

from __future__ import annotations

import asyncio

from juanie.controllers.workqueue import WorkQueue


async def test_a_key_is_queued_once():
    q = WorkQueue()
    for _ in range(3):
        q.add("a")
    q.add("b")
    assert len(q) == 2
    assert await q.get() == "a"
    assert await q.get() == "b"


async def test_a_key_added_while_processing_comes_back_after_done():
    q = WorkQueue()
    q.add("a")
    key = await q.get()
    q.add("a")
    assert len(q) == 0  # not handed to a second worker while the first holds it
    q.done(key)
    assert len(q) == 1 and await q.get() == "a"


async def test_rate_limited_requeue_backs_off_exponentially_and_forget_resets():
    q = WorkQueue(base_delay=0.01, max_delay=0.04)
    delays = [q.add_rate_limited("k") for _ in range(4)]
    assert delays == [0.01, 0.02, 0.04, 0.04]
    q.forget("k")
    assert q.failures("k") == 0
    assert await asyncio.wait_for(q.get(), 2) == "k"


async def test_add_after_waits_then_delivers():
    q = WorkQueue()
    q.add_after("later", 0.05)
    assert len(q) == 0
    assert await asyncio.wait_for(q.get(), 2) == "later"
