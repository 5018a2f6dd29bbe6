"""The pipeline log store: append-only files per step, merged reads, search, follow."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from juanie.pipeline.logs import LogError, LogStore


async def async_wait_until(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll `predicate` from a coroutine (letting the loop run) until truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)


def test_write_read_offsets_and_merge(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    w = store.writer("run-1")
    w.write("build/a", "stdout", "a1", ts=1.0)
    w.write("build/b", "stderr", "b1", ts=2.0)
    w.write("build/a", "stdout", "a2", ts=3.0)
    w.end_step("build/a", "succeeded")
    assert [ln.text for ln in store.read("run-1", "build/a")] == ["a1", "a2"]
    assert [ln.text for ln in store.read("run-1", "build/a", offset=1)] == ["a2"]
    merged = store.read("run-1")
    assert [(ln.step, ln.text, ln.offset) for ln in merged] == [
        ("build/a", "a1", 0),
        ("build/b", "b1", 1),
        ("build/a", "a2", 2),
    ]
    assert [ln.text for ln in store.read("run-1", limit=2, offset=1)] == ["b1", "a2"]
    assert store.step_state("run-1", "build/a") == "succeeded"
    assert store.step_state("run-1", "build/b") is None
    assert store.steps("run-1") == ["build/a", "build/b"]
    assert not store.is_final("run-1")
    w.end_run("failed")
    assert store.is_final("run-1") and store.is_final("run-1", "build/b")


def test_search_is_case_insensitive_by_default(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    w = store.writer("r")
    w.write("test/unit", "stdout", "3 passed")
    w.write("test/unit", "stderr", "AssertionError: Expected 200")
    assert [ln.offset for ln in store.search("r", "expected")] == [1]
    assert store.search("r", "expected", case_sensitive=True) == []
    with pytest.raises(LogError, match="must not be empty"):
        store.search("r", "")


def test_torn_last_line_after_a_crash_is_skipped(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.writer("r").write("s", "stdout", "whole")
    with open(tmp_path / "r" / "s.jsonl", "ab") as fh:
        fh.write(b'{"t": 1, "s": "stdout", "m": "tor')
    assert [ln.text for ln in store.read("r", "s")] == ["whole"]


def test_invalid_run_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="invalid run id"):
        LogStore(tmp_path).read("../etc")


async def test_follow_yields_new_lines_and_stops_at_step_end(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    w = store.writer("r")
    w.write("s", "stdout", "one")
    got: list[str] = []

    async def reader() -> None:
        async for ln in store.follow("r", "s", poll_interval=0.01, timeout=30):
            got.append(ln.text)

    task = asyncio.create_task(reader())
    await async_wait_until(lambda: got == ["one"])
    w.write("s", "stdout", "two")
    w.end_step("s", "succeeded")
    await asyncio.wait_for(task, 10)
    assert got == ["one", "two"]


async def test_follow_whole_run_ends_when_run_is_final(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    w = store.writer("r")
    w.write("a/x", "stdout", "x1")
    w.write("b/y", "stdout", "y1")
    w.end_run("succeeded")
    lines = [ln async for ln in store.follow("r", poll_interval=0.01, timeout=30)]
    assert sorted((ln.step, ln.text) for ln in lines) == [("a/x", "x1"), ("b/y", "y1")]
