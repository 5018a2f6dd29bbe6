"""The controller runner: named controllers, their work queues and workers, resync timers, and the leader lease.

Only the lease holder runs controllers. When it loses the lease (a stalled database, a paused process) it stops them
before anyone else may take over, because it stops renewing well before the lease expires.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field

from juanie.controllers.workqueue import WorkQueue
from juanie.store import leases
from juanie.store.db import Database
from juanie.telemetry import ServerMetrics

log = logging.getLogger("juanie.controllers")

LEASE_NAME = "controllers"


@dataclass(frozen=True)
class Requeue:
    after: float


ReconcileFn = Callable[[Hashable], Awaitable["Requeue | None"]]
ListKeysFn = Callable[[], Awaitable[Iterable[Hashable]]]


@dataclass
class Controller:
    """A named reconcile loop. `list_keys` is called on start and every `resync_seconds` (level-triggered)."""

    name: str
    reconcile: ReconcileFn
    list_keys: ListKeysFn | None = None
    resync_seconds: float = 30.0
    workers: int = 1
    max_backoff: float = 300.0
    queue: WorkQueue = field(default_factory=WorkQueue)

    def enqueue(self, key: Hashable) -> None:
        self.queue.add(key)


class ControllerRunner:
    def __init__(
        self,
        db: Database,
        server_id: str,
        *,
        lease_seconds: float = 10.0,
        metrics: ServerMetrics | None = None,
    ):
        self.db, self.server_id, self.lease_seconds = db, server_id, lease_seconds
        self.metrics = metrics
        self.controllers: dict[str, Controller] = {}
        self.is_leader = False
        self._tasks: list[asyncio.Task[None]] = []
        self._lease_task: asyncio.Task[None] | None = None
        self._stopping = False

    def register(self, controller: Controller) -> Controller:
        self.controllers[controller.name] = controller
        return controller

    def enqueue(self, controller: str, key: Hashable) -> None:
        """Nudge a controller (e.g. after an API change); harmless on a follower, whose queues are not drained."""
        if controller in self.controllers:
            self.controllers[controller].enqueue(key)

    async def start(self) -> None:
        self._lease_task = asyncio.create_task(self._lease_loop(), name="juanie-lease")

    async def stop(self) -> None:
        self._stopping = True
        if self._lease_task:
            self._lease_task.cancel()
            await asyncio.gather(self._lease_task, return_exceptions=True)
        await self._stop_controllers()
        if self.is_leader:
            await asyncio.to_thread(leases.release, self.db.engine, LEASE_NAME, self.server_id)
            self._set_leader(False)

    def _set_leader(self, value: bool) -> None:
        self.is_leader = value
        if self.metrics:
            self.metrics.leader.labels(self.server_id).set(1 if value else 0)

    async def _lease_loop(self) -> None:
        renew_every = self.lease_seconds / 4
        last_success = 0.0
        while not self._stopping:
            now = time.time()
            try:
                held = await asyncio.wait_for(
                    asyncio.to_thread(
                        leases.try_acquire,
                        self.db.engine,
                        LEASE_NAME,
                        self.server_id,
                        now,
                        self.lease_seconds,
                    ),
                    timeout=renew_every,
                )
                if held:
                    last_success = now
            except Exception as exc:  # a database hiccup must not kill the server; the lease just lapses
                log.warning("lease renewal failed: %s", exc)
                held = False
            # Stop before the lease could have expired for others: renewal must have succeeded recently.
            still_ours = held or (self.is_leader and time.time() - last_success < self.lease_seconds / 2)
            if still_ours and not self.is_leader:
                log.info("server %s acquired the controller lease", self.server_id)
                self._set_leader(True)
                self._start_controllers()
            elif not still_ours and self.is_leader:
                log.warning("server %s lost the controller lease; stopping controllers", self.server_id)
                self._set_leader(False)
                await self._stop_controllers()
            await asyncio.sleep(renew_every)

    def _start_controllers(self) -> None:
        for controller in self.controllers.values():
            controller.queue = WorkQueue(max_delay=controller.max_backoff)
            for i in range(controller.workers):
                self._tasks.append(
                    asyncio.create_task(self._worker(controller), name=f"{controller.name}-{i}")
                )
            if controller.list_keys is not None:
                self._tasks.append(
                    asyncio.create_task(self._resync(controller), name=f"{controller.name}-resync")
                )

    async def _stop_controllers(self) -> None:
        for controller in self.controllers.values():
            controller.queue.close()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _resync(self, controller: Controller) -> None:
        assert controller.list_keys is not None
        while True:
            try:
                for key in await controller.list_keys():
                    controller.queue.add(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("controller %s: listing keys failed", controller.name)
            if self.metrics:
                self.metrics.queue_depth.labels(controller.name).set(len(controller.queue))
            await asyncio.sleep(controller.resync_seconds)

    async def _worker(self, controller: Controller) -> None:
        queue = controller.queue
        while True:
            key = await queue.get()
            started = time.perf_counter()
            result = "ok"
            try:
                outcome = await controller.reconcile(key)
                queue.forget(key)
                if isinstance(outcome, Requeue):
                    queue.add_after(key, outcome.after)
                    result = "requeue"
            except asyncio.CancelledError:
                raise
            except Exception:
                result = "error"
                delay = queue.add_rate_limited(key)
                log.exception(
                    "controller %s: reconcile of %r failed; retrying in %.1fs", controller.name, key, delay
                )
            finally:
                queue.done(key)
                if self.metrics:
                    self.metrics.reconciles.labels(controller.name, result).inc()
                    self.metrics.reconcile_duration.labels(controller.name).observe(
                        time.perf_counter() - started
                    )
                    self.metrics.queue_depth.labels(controller.name).set(len(queue))
