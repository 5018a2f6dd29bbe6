"""How many pipeline runs may execute at once, globally and per project; queued runs wait their turn.

A run first takes its project's slot, then a global one, so one busy project queues behind itself instead of
holding global slots it cannot use. Waiting can be abandoned (cancel while queued) without leaking a slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class RunCancelled(Exception):
    """The run was cancelled while it waited in the queue."""


class ConcurrencyLimiter:
    def __init__(self, max_global: int = 2, max_per_project: int = 1):
        if max_global < 1 or max_per_project < 1:
            raise ValueError(f"concurrency limits must be >= 1, got global={max_global} per_project={max_per_project}")
        self.max_global = max_global
        self.max_per_project = max_per_project
        self._global = asyncio.Semaphore(max_global)
        self._projects: dict[str, asyncio.Semaphore] = {}
        self._waiting: dict[str, int] = {}
        self._running: dict[str, int] = {}

    def _project(self, project: str) -> asyncio.Semaphore:
        sem = self._projects.get(project)
        if sem is None:
            sem = self._projects[project] = asyncio.Semaphore(self.max_per_project)
        return sem

    def queued(self, project: str | None = None) -> int:
        if project is None:
            return sum(self._waiting.values())
        return self._waiting.get(project, 0)

    def running(self, project: str | None = None) -> int:
        if project is None:
            return sum(self._running.values())
        return self._running.get(project, 0)

    @staticmethod
    async def _acquire(sem: asyncio.Semaphore, cancel_event: asyncio.Event | None) -> None:
        if cancel_event is None:
            await sem.acquire()
            return
        acquire = asyncio.create_task(sem.acquire())
        cancelled = asyncio.create_task(cancel_event.wait())
        try:
            await asyncio.wait({acquire, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
        if acquire.done() and not acquire.cancelled():
            if cancel_event.is_set():
                sem.release()
                raise RunCancelled()
            return
        acquire.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await acquire
        if acquire.done() and not acquire.cancelled():
            sem.release()  # it was granted while we were cancelling
        raise RunCancelled()

    @contextlib.asynccontextmanager
    async def slot(self, project: str, cancel_event: asyncio.Event | None = None) -> AsyncIterator[None]:
        """Hold a run slot for `project`; raises `RunCancelled` if `cancel_event` fires while queued."""
        self._waiting[project] = self._waiting.get(project, 0) + 1
        project_sem = self._project(project)
        try:
            await self._acquire(project_sem, cancel_event)
            try:
                await self._acquire(self._global, cancel_event)
            except BaseException:
                project_sem.release()
                raise
        finally:
            self._waiting[project] -= 1
        self._running[project] = self._running.get(project, 0) + 1
        try:
            yield
        finally:
            self._running[project] -= 1
            self._global.release()
            project_sem.release()
