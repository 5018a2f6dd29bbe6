"""Shared bench helpers: tool installation, free ports, process groups, wrk output parsing, machine info, and a
real Juanie server with microshop registered."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.server_support import Server

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def ensure_debian_tools(*binaries: str, packages: dict[str, str] | None = None) -> None:
    """Install missing tools from Debian (`apt-get install -y`); raise with a hint when that is impossible."""
    missing = [b for b in binaries if shutil.which(b) is None and not os.path.exists(f"/usr/sbin/{b}")]
    if not missing:
        return
    names = [(packages or {}).get(b, b) for b in missing]
    try:
        subprocess.run(["apt-get", "install", "-y", *names], check=True, capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as err:
        raise SystemExit(
            f"bench needs {', '.join(missing)}; install with: apt-get install -y {' '.join(names)}"
        ) from err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            value = predicate()
            if value:
                return value
        time.sleep(0.05)
    raise SystemExit(f"timed out after {timeout}s waiting for {predicate}")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started with start_new_session=True, and everything it started."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


def parse_wrk(output: str) -> dict[str, float]:
    """Throughput, latency percentiles (ms) and error counts from `wrk --latency` output."""

    def ms(text: str) -> float:
        match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
        if not match:
            raise ValueError(f"unexpected wrk latency {text!r}")
        return float(match.group(1)) * _UNITS[match.group(2)]

    result: dict[str, float] = {}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rps is None:
        raise ValueError(f"wrk output without Requests/sec:\n{output}")
    result["rps"] = float(rps.group(1))
    for pct in ("50", "75", "90", "99"):
        found = re.search(rf"^\s+{pct}%\s+(\S+)", output, re.MULTILINE)
        if found:
            result[f"p{pct}_ms"] = ms(found.group(1))
    total = re.search(r"(\d+) requests in", output)
    result["requests"] = float(total.group(1)) if total else 0.0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["socket_errors"] = float(sum(int(g) for g in errors.groups())) if errors else 0.0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = float(non2xx.group(1)) if non2xx else 0.0
    return result


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    with contextlib.suppress(OSError):
        info["loadavg_before"] = os.getloadavg()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    return info


def stamp(result: dict[str, Any], started_at: str, begun: float, machine: dict[str, Any]) -> dict[str, Any]:
    """Add when the bench ran, how long it took and on what (with the load average after it: the CPUs are shared,
    so a figure is read together with what else was running)."""
    with contextlib.suppress(OSError):
        machine = {**machine, "loadavg_after": os.getloadavg()}
    return {
        **result,
        "started_at": started_at,
        "finished_at": datetime.now(UTC).isoformat(),
        "elapsed_seconds": round(time.monotonic() - begun, 1),
        "machine": machine,
    }


@dataclass
class MicroshopBench:
    """A bench run on a real Juanie server (local engine, its own gateway) with microshop registered from a throwaway
    repository, and what the result file says about the run: when it began, on what machine, what was left running."""

    source: Path
    server: Server
    gateway_port: int
    started_at: str
    begun: float  # time.monotonic() at the start, for the elapsed time
    machine: dict[str, Any]
    leftovers: list[int] = field(default_factory=list)  # pids still running after the server was stopped

    def write_result(self, path: Path, result: dict[str, Any]) -> None:
        """Add the leftovers, the run's start, end and length and the machine to `result`, and write it to `path`.
        Called after the `with` block: only then are the leftovers known, and the teardown counts in the length."""
        result["leftover_processes"] = self.leftovers
        result["started_at"] = self.started_at
        result["finished_at"] = datetime.now(UTC).isoformat()
        result["elapsed_seconds"] = round(time.monotonic() - self.begun, 1)
        result["machine"] = self.machine
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")


@contextlib.contextmanager
def microshop_bench(prefix: str, payment_key: str) -> Iterator[MicroshopBench]:
    """Start a Juanie server on the local engine in a fresh temporary directory (`prefix`), with microshop registered
    from a throwaway git repository; at the end stop it and everything it started, and delete the directory."""
    # Imported here, not at the top: benches that do not put the repository root on sys.path import this module too.
    from tests.server_support import microshop_source, register_microshop, start_server, stop_everything

    begun, started_at, machine = time.monotonic(), datetime.now(UTC).isoformat(), machine_info()
    base = Path(tempfile.mkdtemp(prefix=prefix))
    source = microshop_source(base / "source")
    gateway_port = free_port()
    server = start_server(
        base / "data",
        env={
            "JUANIE_ENGINE": "local",
            "JUANIE_GATEWAY_PORT": str(gateway_port),
            "JUANIE_GATEWAY_ADMIN_PORT": str(free_port()),
        },
    )
    bench = MicroshopBench(source, server, gateway_port, started_at, begun, machine)
    try:
        register_microshop(server, source, payment_key)
        yield bench
    finally:
        bench.leftovers = stop_everything(server)
        shutil.rmtree(base, ignore_errors=True)
