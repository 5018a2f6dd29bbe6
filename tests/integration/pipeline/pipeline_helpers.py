"""Shared helpers for the pipeline integration tests: polling with a deadline, specs, process checks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from juanie.pipeline.model import PipelineSpec, Stage, Step
from tests.support import wait_until  # noqa: F401  (re-exported for the tests here)


async def async_wait_until(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def spec(*stages: tuple[str, list[tuple[str, str]]] | Stage) -> PipelineSpec:
    """Stages from `(name, [(step, command), ...])` tuples; each follows the previous one."""
    built = []
    for s in stages:
        if isinstance(s, Stage):
            built.append(s)
        else:
            name, steps = s
            built.append(Stage(name, tuple(Step(n, (c,), timeout=60) for n, c in steps)))
    return PipelineSpec(tuple(built))


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def read_pids(d: Path) -> list[int]:
    return [int(p.read_text().strip()) for p in sorted(d.glob("*.pid")) if p.read_text().strip()]


def processes_with_env(key: str, value: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(key) == value:
                found.append(proc)
        except psutil.Error:
            continue
    return found
