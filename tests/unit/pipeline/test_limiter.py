"""The run concurrency limiter: global and per-project slots, FIFO queueing, cancel while queued."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from juanie.pipeline.limiter import ConcurrencyLimiter, RunCancelled


async def async_wait_until(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll `predicate` from a coroutine (letting the loop run) until truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)


async def test_per_project_and_global_limits() -> None:
    limiter = ConcurrencyLimiter(max_global=2, max_per_project=1)
    active: dict[str, int] = {}
    peak = {"global": 0}
    peak_project: dict[str, int] = {}
    gates = {i: asyncio.Event() for i in range(4)}

    async def run(i: int, project: str) -> None:
        async with limiter.slot(project):
            active[project] = active.get(project, 0) + 1
            peak["global"] = max(peak["global"], sum(active.values()))
            peak_project[project] = max(peak_project.get(project, 0), active[project])
            await gates[i].wait()
            active[project] -= 1

    tasks = [asyncio.create_task(run(i, p)) for i, p in enumerate(["a", "a", "b", "c"])]
    await async_wait_until(lambda: limiter.running() == 2)
    assert limiter.queued() == 2 and limiter.running("a") == 1
    for i in range(4):
        gates[i].set()
    await asyncio.gather(*tasks)
    assert peak == {"global": 2} and max(peak_project.values()) == 1
    assert limiter.running() == 0 and limiter.queued() == 0


async def test_cancel_while_queued_releases_nothing_it_did_not_take() -> None:
    limiter = ConcurrencyLimiter(max_global=1, max_per_project=1)
    hold = asyncio.Event()

    async def holder() -> None:
        async with limiter.slot("p"):
            await hold.wait()

    first = asyncio.create_task(holder())
    await async_wait_until(lambda: limiter.running() == 1)
    cancel = asyncio.Event()

    async def waiter() -> None:
        async with limiter.slot("q", cancel):
            pass

    second = asyncio.create_task(waiter())
    await async_wait_until(lambda: limiter.queued() == 1)
    cancel.set()
    with pytest.raises(RunCancelled):
        await second
    hold.set()
    await first
    async with limiter.slot("q"):  # the slots are all free again
        assert limiter.running() == 1


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        ConcurrencyLimiter(0, 1)
