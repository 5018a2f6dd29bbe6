"""Process edges: start a replica detached from the server, tell whether it still runs, stop its process
group.

A replica is started in its own session (so it is its own process group and survives the server), with stdout
and
stderr appended to files (never pipes to the server, which may die). Identity is (pid, create_time, cmdline):
a pid
alone may have been reused by an unrelated process after a reboot or a long outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from juanie.engines.base import EngineError
from juanie.sandbox.signals import terminate


@dataclass
class Handle:
    """A live replica process; `popen` is set only when this server process started it (and must reap it)."""

    pid: int
    create_time: float
    cmdline: list[str]
    popen: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None


def free_port(taken: set[int]) -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now and this engine has not handed out."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            return port
    raise EngineError("no free TCP port on 127.0.0.1 after 200 tries")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def resolve_command(argv: list[str], env: dict[str, str], cwd: Path) -> list[str]:
    """`argv` with its program found on the replica's PATH (before a sandbox wraps it, where PATH differs)."""
    if not cwd.is_dir():
        raise EngineError(f"release directory {cwd} does not exist; build the release or fix the image path")
    exe = argv[0] if "/" in argv[0] else shutil.which(argv[0], path=env.get("PATH", ""))
    if exe is None:
        raise EngineError(f"command {argv[0]!r} not found on PATH {env.get('PATH', '')!r} (cwd {cwd})")
    return [exe, *argv[1:]]


def spawn(
    argv: list[str], env: dict[str, str], cwd: Path, stdout: Path, stderr: Path, launcher: list[str] | None = None
) -> Handle:
    """Start a replica in a new session with output appended to its log files.

    `launcher` (joining cgroups) runs first and execs `argv`, so the recorded cmdline is `argv`'s own.
    """
    argv = resolve_command(argv, env, cwd)
    stdout.parent.mkdir(parents=True, exist_ok=True)
    with open(stdout, "ab") as out, open(stderr, "ab") as err:
        try:
            popen = subprocess.Popen(
                [*(launcher or []), *argv],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as e:
            raise EngineError(f"cannot start {argv[0]!r} in {cwd}: {e.strerror or e}") from None
    try:
        created = psutil.Process(popen.pid).create_time()
    except psutil.Error:
        created = 0.0
    return Handle(pid=popen.pid, create_time=created, cmdline=argv, popen=popen)


def mask_args(argv: list[str], secret_values: set[str]) -> list[str]:
    """The command line as it may be written to disk: an argument that carries a secret value (a `$(VAR)`
    expansion of a secretKeyRef) is replaced by a digest that still lets adoption compare it."""
    secrets = [v for v in secret_values if len(v) >= 4]
    return [
        "sha256:" + hashlib.sha256(a.encode()).hexdigest()[:16] if any(v in a for v in secrets) else a for a in argv
    ]


def _same(live: list[str], recorded: list[str]) -> bool:
    return len(live) == len(recorded) and all(
        a == b or (b.startswith("sha256:") and b == "sha256:" + hashlib.sha256(a.encode()).hexdigest()[:16])
        for a, b in zip(live, recorded, strict=True)
    )


def cmdline_matches(live: list[str], recorded: list[str]) -> bool:
    """True when a live process's cmdline is the one recorded (secret arguments compared by digest). The
    program may have been re-executed by a launcher (a `#!` script, a version-manager shim), so the arguments
    must match but the program path may not."""
    if _same(live, recorded):
        return True
    if not live or not recorded:
        return False
    if len(recorded) > 1:
        n = len(recorded) - 1
        return len(live) >= n and _same(live[-n:], recorded[1:])
    return os.path.basename(live[0]).startswith(os.path.basename(recorded[0]).rstrip("0123456789."))


def verify(pid: int, create_time: float, cmdline: list[str], instance: str = "") -> Handle | None:
    """Adopt a recorded process if pid, start time and command line all still match (and, where readable, its
    JUANIE_INSTANCE variable names the same replica); else None."""
    try:
        p = psutil.Process(pid)
        if abs(p.create_time() - create_time) > 0.05 or p.status() == psutil.STATUS_ZOMBIE:
            return None
        if not cmdline_matches(p.cmdline(), cmdline):
            return None
        if instance:
            with contextlib.suppress(psutil.AccessDenied):
                if p.environ().get("JUANIE_INSTANCE") != instance:
                    return None
    except psutil.Error:
        return None
    return Handle(pid=pid, create_time=create_time, cmdline=cmdline)


def live_cmdline(pid: int) -> list[str] | None:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return None


def alive(h: Handle) -> bool:
    """Whether the replica's main process still runs; reaps it and records its exit code when it ended."""
    if h.exit_code is not None:
        return False
    if h.popen is not None:
        code = h.popen.poll()
        if code is None:
            return True
        h.exit_code = code
        return False
    try:
        p = psutil.Process(h.pid)
        if abs(p.create_time() - h.create_time) > 0.05:
            h.exit_code = -1
            return False
        if p.status() == psutil.STATUS_ZOMBIE:
            with contextlib.suppress(ChildProcessError, OSError):
                _, status = os.waitpid(h.pid, os.WNOHANG)
                h.exit_code = os.waitstatus_to_exitcode(status) if status else -1
            h.exit_code = -1 if h.exit_code is None else h.exit_code
            return False
    except psutil.Error:
        h.exit_code = -1
        return False
    return True


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in a process group."""
    out = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(p.pid) == pgid:
                out.append(p.pid)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return out


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def stop_group(h: Handle, grace: float, poll: float = 0.05) -> str:
    """SIGTERM the replica's process group, wait up to `grace` seconds, then SIGKILL what is left of the
    group.

    Returns "terminated" or "killed". Waits for children as well as the main process: an application that
    forks
    workers must not leave them behind.
    """
    pgid = h.pid
    terminate(group_members(pgid))  # the application, not bubblewrap: the replica runs until it has shut down
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        alive(h)
        if not group_members(pgid):
            return "terminated"
        await asyncio.sleep(poll)
    _signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive(h)
        if not group_members(pgid):
            break
        await asyncio.sleep(poll)
    return "killed"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process and its children (the HPA's raw measure)."""
    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for q in procs:
        with contextlib.suppress(psutil.Error):
            t = q.cpu_times()
            total += t.user + t.system
    return total
