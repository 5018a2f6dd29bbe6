"""A gateway of several processes: the primary's handles on its workers, and answers summed over all of them.

One Python process proxies as fast as one core allows, so the gateway runs like nginx: the primary (admin API,
state directory, pid file) and `workers - 1` worker processes each accept on their own socket of the one
address (see `listener`). The route table and every question about traffic go through `Fleet`:
a table change is acknowledged only once every process serves it (an endpoint about to be stopped must get no
new request anywhere), and /signals, /metrics and in-flight counts are the sums of every process's answers.

A worker exits when the primary goes away (its control socket closes), so a primary killed with -9 leaves no
process holding the port; a worker that dies or stops answering is replaced, and gets the current table first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from juanie.engines.local.gateway import control
from juanie.engines.local.gateway.limits import ConnectionLimits
from juanie.engines.local.gateway.proxy import DataPlane
from juanie.engines.local.gateway.routes import Route, routes_document
from juanie.engines.local.gateway.table import RouteTable

log = logging.getLogger("juanie.gateway.fleet")

ASK_TIMEOUT = 5.0  # a worker that takes longer to answer is stuck: it is replaced
START_TIMEOUT = 20.0  # from spawn to serving (imports on a busy machine)
RESPAWN_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


def worker_count(text: str | int | None) -> int:
    """`auto` (one process per core, as nginx's worker_processes auto) or a positive number."""
    if text is None or str(text).strip().lower() in ("", "auto"):
        return max(1, os.cpu_count() or 1)
    value = str(text).strip()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"workers: expected a positive number or 'auto', got {text!r}")
    return int(value)


class WorkerGone(Exception):
    """The worker did not answer (it exited, or did not answer within the timeout)."""


class WorkerHandle:
    """The primary's end of one worker: its process and its control socket, one question at a time."""

    def __init__(self, index: int, proc: asyncio.subprocess.Process, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:  # fmt: skip
        self.index = index
        self.proc = proc
        self.reader = reader
        self.writer = writer
        self.lock = asyncio.Lock()
        self.broken = False

    async def ask(self, message: dict[str, Any], timeout: float = ASK_TIMEOUT) -> dict[str, Any]:
        if self.broken:
            raise WorkerGone(f"worker {self.index} is being replaced")
        async with self.lock:
            try:
                self.writer.write(control.encode(message))
                line = await asyncio.wait_for(self.reader.readline(), timeout)
            except (OSError, TimeoutError) as err:
                self.fail()
                raise WorkerGone(f"worker {self.index} (pid {self.proc.pid}) did not answer: {err!r}") from None
            if not line:
                self.fail()
                raise WorkerGone(f"worker {self.index} (pid {self.proc.pid}) closed its control socket")
        reply = control.decode(line)
        if "error" in reply:
            raise ValueError(f"worker {self.index}: {reply['error']}")
        return reply

    def fail(self) -> None:
        """Stop trusting this worker: kill it so its supervisor starts a fresh one with the current table."""
        self.broken = True
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def terminate(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)


class Fleet:
    """The primary's data plane plus its workers, asked and changed as one."""

    def __init__(self, plane: DataPlane, listen: socket.socket, state_dir: Path, workers: int,
                 drain_seconds: float, log_level: str = "INFO",
                 limits: ConnectionLimits | None = None) -> None:  # fmt: skip
        self.plane = plane
        self.listen = listen
        self.state_dir = state_dir
        self.wanted = max(0, workers - 1)  # the primary serves traffic too
        self.drain_seconds = drain_seconds
        self.log_level = log_level
        self.limits = limits or ConnectionLimits()
        self.handles: dict[int, WorkerHandle] = {}
        self._supervisors: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def routes(self) -> tuple[Route, ...]:
        return self.plane.table.routes

    def pids(self) -> list[int]:
        return [h.proc.pid for h in self.handles.values() if not h.broken]

    async def start(self) -> None:
        """Start the workers and wait until each serves the current table (a slow one is reported, not fatal)."""
        ready = [asyncio.get_running_loop().create_future() for _ in range(self.wanted)]
        self._supervisors = [asyncio.create_task(self._supervise(i, ready[i])) for i in range(self.wanted)]
        if ready:
            await asyncio.wait(ready, timeout=START_TIMEOUT)

    async def _spawn(self, index: int) -> WorkerHandle:
        parent, child = socket.socketpair()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "juanie.engines.local.gateway", "--worker",
                "--listen", "{}:{}".format(*self.listen.getsockname()[:2]), "--control-fd", str(child.fileno()),
                "--state", str(self.state_dir), "--drain-seconds", str(self.drain_seconds),
                "--log-level", self.log_level, *self.limits.args(),
                pass_fds=(child.fileno(),), stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        reader, writer = await asyncio.open_unix_connection(sock=parent, limit=control.MAX_MESSAGE)
        handle = WorkerHandle(index, proc, reader, writer)
        self.handles[index] = handle
        # under the handle's lock the table read here is the newest: a concurrent change waits for this send
        async with handle.lock:
            message = {"op": "routes", "routes": routes_document(self.routes)}
            try:
                writer.write(control.encode(message))
                line = await asyncio.wait_for(reader.readline(), START_TIMEOUT)
            except (OSError, TimeoutError):
                line = b""
            if not line:
                handle.fail()
        return handle

    async def _supervise(self, index: int, ready: asyncio.Future[None]) -> None:
        """Keep worker `index` running: start it, wait for it to exit, start it again after a back-off."""
        failures = 0
        while not self._stopping:
            try:
                handle = await self._spawn(index)
            except OSError as err:
                log.error("cannot start gateway worker %d: %s", index, err)
                handle = None
            if not ready.done():
                ready.set_result(None)
            if handle is not None:
                if not handle.broken:
                    log.info("gateway worker %d serving (pid %d)", index, handle.proc.pid)
                code = await handle.proc.wait()
                handle.broken = True
                handle.writer.close()
                if self._stopping:
                    return
                log.warning("gateway worker %d (pid %d) exited with %s; starting another", index, handle.proc.pid,
                            code)  # fmt: skip
            failures += 1
            await asyncio.sleep(RESPAWN_BACKOFF[min(failures - 1, len(RESPAWN_BACKOFF) - 1)])

    async def _ask_workers(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        handles = [h for h in self.handles.values() if not h.broken]
        replies = await asyncio.gather(*(h.ask(message) for h in handles), return_exceptions=True)
        answers: list[dict[str, Any]] = []
        for handle, reply in zip(handles, replies, strict=True):
            if isinstance(reply, BaseException):
                log.warning("gateway worker %d: %s", handle.index, reply)
            else:
                answers.append(reply)
        return answers

    async def ask(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Every process's answer to `message`, the primary's first; workers that fail are replaced, not counted."""
        return [control.answer(self.plane, message), *await self._ask_workers(message)]

    async def set_routes(self, routes: tuple[Route, ...]) -> None:
        """Serve `routes` everywhere; returns once every worker serves them (or was told to make way)."""
        self.plane.replace_table(RouteTable(routes))
        await self._ask_workers({"op": "routes", "routes": routes_document(routes)})

    async def stop(self) -> None:
        """Ask every worker to drain and exit; kill the ones still there after the drain window."""
        self._stopping = True
        handles = list(self.handles.values())
        for handle in handles:
            handle.terminate()
        waits = [asyncio.create_task(h.proc.wait()) for h in handles]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=self.drain_seconds + 2)
            for handle in handles:
                if handle.proc.returncode is None:
                    handle.fail()
            if pending:
                await asyncio.wait(pending, timeout=2)
        for task in self._supervisors:
            task.cancel()
        for handle in handles:
            handle.writer.close()
