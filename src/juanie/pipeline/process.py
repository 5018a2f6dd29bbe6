"""One step as a real process tree: start it in its own session, stream its output, and end all of it.

A step's command may start children that start grandchildren, some of which may even call `setsid`. Every
process of the tree inherits the step's `JUANIE_STEP_TOKEN`, and the step leader owns a process group, so
`kill_step_processes` finds them all (group members *and* token holders) and ends them SIGTERM-first,
SIGKILL after a grace period. Nothing a step starts outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from juanie.sandbox.signals import terminate

LineCallback = Callable[[str, str], None]
"""(stream, text) for every line a step prints; stream is "stdout" or "stderr"."""

_CHUNK = 64 * 1024
MAX_LINE = 64 * 1024
"""Longer lines are cut into pieces of this size so one runaway line cannot exhaust memory."""


@dataclass(frozen=True)
class ProcessOutcome:
    exit_code: int | None
    """The command's exit status; negative for a signal (as in `subprocess`); None if it never started."""
    timed_out: bool
    cancelled: bool
    duration: float
    killed: int = 0
    """How many processes had to be ended (leftover background jobs count too)."""


def find_processes(env_match: dict[str, str], pgid: int | None = None) -> list[psutil.Process]:
    """Processes in group `pgid` or whose environment contains every `env_match` pair (never this process)."""
    me = os.getpid()
    found: list[psutil.Process] = []
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if pgid is not None and os.getpgid(proc.pid) == pgid:
                found.append(proc)
                continue
            if env_match:
                env = proc.environ()
                if all(env.get(k) == v for k, v in env_match.items()):
                    found.append(proc)
        except (psutil.Error, ProcessLookupError, PermissionError, OSError):
            continue
    return found


def _signal_all(procs: list[psutil.Process], pgid: int | None, sig: signal.Signals) -> None:
    if pgid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


async def kill_processes(procs: list[psutil.Process], pgid: int | None, grace: float) -> int:
    """SIGTERM the group and every listed process, wait up to `grace` seconds, then SIGKILL what is left."""
    alive = [p for p in procs if _alive(p)]
    if not alive and pgid is None:
        return 0
    group = find_processes({}, pgid=pgid) if pgid is not None else []
    terminate([p.pid for p in (*alive, *group)])  # a sandboxed step's bubblewrap follows the step out
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in alive):
        await asyncio.sleep(0.05)
    survivors = [p for p in alive if _alive(p)]
    _signal_all(survivors, pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(_alive(p) for p in survivors):
        await asyncio.sleep(0.02)
    return len(alive)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def _pump(reader: asyncio.StreamReader, stream: str, on_line: LineCallback) -> None:
    """Split a pipe into lines as they arrive; a final line without newline is still delivered."""
    pending = b""
    while True:
        chunk = await reader.read(_CHUNK)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            on_line(stream, line.rstrip(b"\r").decode("utf-8", "replace"))
        while len(pending) > MAX_LINE:
            on_line(stream, pending[:MAX_LINE].decode("utf-8", "replace"))
            pending = pending[MAX_LINE:]
    if pending:
        on_line(stream, pending.rstrip(b"\r").decode("utf-8", "replace"))


async def run_process(
    argv: list[str],
    cwd: str,
    env: dict[str, str],
    on_line: LineCallback,
    timeout: float,
    cancel_event: asyncio.Event | None = None,
    grace: float = 5.0,
    on_start: Callable[[int], None] | None = None,
    token_var: str = "JUANIE_STEP_TOKEN",
) -> ProcessOutcome:
    """Run `argv` in its own session; stream its lines; end its whole tree on timeout, cancel or exit.

    `env[token_var]` marks every process of the tree so escapees from the process group are found too.
    """
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        on_line("stderr", f"cannot start {argv[0]}: {exc.strerror or exc}")
        return ProcessOutcome(None, False, False, time.monotonic() - started)
    pgid = proc.pid  # start_new_session: the leader's pid is the group id
    if on_start is not None:
        on_start(pgid)
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [
        asyncio.create_task(_pump(proc.stdout, "stdout", on_line)),
        asyncio.create_task(_pump(proc.stderr, "stderr", on_line)),
    ]
    waiter = asyncio.create_task(_exited(proc))
    canceller = asyncio.create_task(cancel_event.wait()) if cancel_event is not None else None
    match = {token_var: env[token_var]} if token_var in env else {}
    timed_out = cancelled = False
    try:
        waits = {waiter} | ({canceller} if canceller else set())
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            cancelled = canceller is not None and canceller in done
            timed_out = not cancelled
            why = "cancelled" if cancelled else f"timed out after {timeout:g}s"
            on_line("system", f"{why}: sending SIGTERM to the step's processes (SIGKILL after {grace:g}s)")
        # Whether it ended or not, nothing of the tree may survive: background jobs too.
        tree = _descendants(pgid) + find_processes(match, pgid=pgid)
        killed = await kill_processes(_unique(tree), pgid, grace)
        if killed and not (timed_out or cancelled):
            on_line("system", f"ended {killed} process(es) the step left running in the background")
        exit_code = await asyncio.wait_for(asyncio.shield(waiter), timeout=grace + 10)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*pumps), timeout=5.0)
    finally:
        for task in (*pumps, waiter, *([canceller] if canceller else [])):
            if not task.done():
                task.cancel()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
    return ProcessOutcome(exit_code, timed_out, cancelled, time.monotonic() - started, killed)


async def _exited(proc: asyncio.subprocess.Process) -> int:
    """The leader's exit status as soon as it is reaped.

    `Process.wait()` also waits for the pipes to close, which a background job holding stdout delays
    forever; the return code is known earlier, so poll it.
    """
    while proc.returncode is None:
        await asyncio.sleep(0.05)
    return proc.returncode


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        leader = psutil.Process(pid)
        return [leader, *leader.children(recursive=True)]
    except psutil.Error:
        return []


def _unique(procs: list[psutil.Process]) -> list[psutil.Process]:
    seen: dict[int, psutil.Process] = {}
    for p in procs:
        seen.setdefault(p.pid, p)
    return list(seen.values())
