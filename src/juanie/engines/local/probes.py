"""Readiness and liveness probes: their spec (parsed from a container), their counting rules, and running one.

The counting (`ProbeState.record`) is pure and follows Kubernetes: `successThreshold` consecutive successes
make
a probe pass, `failureThreshold` consecutive failures make it fail. Running a probe (`run_probe`) is the only
I/O:
an HTTP GET, a TCP connect, or a command, each bounded by `timeoutSeconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from juanie.engines.base import EngineError

ProbeKind = Literal["http", "tcp", "exec"]
Jailer = Callable[[list[str]], list[str]]
"""Turns an exec probe's command into the argv that runs it sandboxed (see `juanie.sandbox`)."""


@dataclass(frozen=True)
class ProbeSpec:
    kind: ProbeKind
    path: str = "/"
    port: str = ""  # a port name or number as written; resolved to the instance's real port at run time
    command: tuple[str, ...] = ()
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


def _number(raw: dict[str, Any], key: str, default: float, minimum: float, where: str) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise EngineError(f"{where}.{key}: expected a number >= {minimum:g}, got {value!r}")
    return float(value)


def parse_probe(raw: Any, where: str) -> ProbeSpec | None:
    """A container's `readinessProbe`/`livenessProbe` -> ProbeSpec; None when absent."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise EngineError(f"{where}: expected an object with httpGet, tcpSocket or exec, got {raw!r}")
    common = {
        "initial_delay": _number(raw, "initialDelaySeconds", 0, 0, where),
        "period": _number(raw, "periodSeconds", 10, 0.05, where),
        "timeout": _number(raw, "timeoutSeconds", 1, 0.05, where),
        "success_threshold": int(_number(raw, "successThreshold", 1, 1, where)),
        "failure_threshold": int(_number(raw, "failureThreshold", 3, 1, where)),
    }
    if "httpGet" in raw:
        http = raw["httpGet"] or {}
        return ProbeSpec(kind="http", path=str(http.get("path") or "/"), port=str(http.get("port", "")), **common)
    if "tcpSocket" in raw:
        return ProbeSpec(kind="tcp", port=str((raw["tcpSocket"] or {}).get("port", "")), **common)
    if "exec" in raw:
        cmd = (raw["exec"] or {}).get("command")
        if not isinstance(cmd, list) or not cmd:
            raise EngineError(f"{where}.exec.command: expected a non-empty list of strings")
        return ProbeSpec(kind="exec", command=tuple(str(c) for c in cmd), **common)
    raise EngineError(f"{where}: the local engine runs httpGet, tcpSocket and exec probes, got {sorted(raw)}")


@dataclass(frozen=True)
class ProbeState:
    """Consecutive results of one probe and whether it currently passes."""

    passing: bool = False
    successes: int = 0
    failures: int = 0
    last_error: str = ""

    def record(self, spec: ProbeSpec, ok: bool, error: str = "") -> ProbeState:
        """The state after one more result; pure so the thresholds are tested without processes."""
        if ok:
            n = self.successes + 1
            return ProbeState(self.passing or n >= spec.success_threshold, n, 0, "")
        n = self.failures + 1
        return ProbeState(self.passing and n < spec.failure_threshold, 0, n, error)


async def _http(host: str, port: int, path: str, timeout: float) -> tuple[bool, str]:
    writer = None
    try:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that races with
        # completion, and a probe task that ignores its cancellation would outlive the engine.
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: juanie-probe\r\nConnection: close\r\n\r\n"
            )
            writer.write(request.encode())
            await writer.drain()
            line = await reader.readline()
        parts = line.decode("latin-1").split()
        if len(parts) < 2 or not parts[1].isdigit():
            return False, f"HTTP probe {path}: malformed status line {line[:60]!r}"
        code = int(parts[1])
        return (200 <= code < 400), f"HTTP probe {path}: status {code}"
    except (OSError, TimeoutError) as err:
        return False, f"HTTP probe {path}: {type(err).__name__} {err}".strip()
    finally:
        if writer is not None:
            writer.close()


async def _tcp(host: str, port: int, timeout: float) -> tuple[bool, str]:
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as err:
        return False, f"TCP probe port {port}: {type(err).__name__} {err}".strip()
    writer.close()
    return True, ""


async def _exec(
    command: tuple[str, ...], env: dict[str, str], cwd: str, timeout: float, jail: Jailer | None
) -> tuple[bool, str]:
    try:
        argv = jail(list(command)) if jail is not None else list(command)
    except Exception as err:  # the sandbox refuses: the probe fails with its reason, never runs bare
        return False, f"exec probe {command[0]!r}: {err}"
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as err:
        return False, f"exec probe {command[0]!r}: {err.strerror or err}"
    try:
        async with asyncio.timeout(timeout):
            code = await proc.wait()
    except TimeoutError:
        return False, f"exec probe {command[0]!r}: timed out after {timeout:g}s"
    finally:
        if proc.returncode is None:  # timed out or cancelled: the probe's whole process group goes
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.waitpid(proc.pid, os.WNOHANG)
    return code == 0, f"exec probe {command[0]!r}: exit code {code}"


async def run_probe(
    spec: ProbeSpec, port: int, env: dict[str, str], cwd: str, jail: Jailer | None = None
) -> tuple[bool, str]:
    """Run one probe against a replica listening on `port`; (ok, why). The app's faults never raise.

    An exec probe is the manifest's code: `jail` turns its command into one that runs in the replica's sandbox."""
    if spec.kind == "http":
        return await _http("127.0.0.1", port, spec.path, spec.timeout)
    if spec.kind == "tcp":
        return await _tcp("127.0.0.1", port, spec.timeout)
    return await _exec(spec.command, env, cwd, spec.timeout, jail)
