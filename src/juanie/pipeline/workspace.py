"""Run workspaces on disk: the clean environment steps get, artifacts, and crash recovery.

While a run executes, `<workspace_root>/<run_id>/.juanie-run.json` names the server process that owns it.
If the server dies, its step processes live on in their own sessions; on the next start `recover()` finds
workspaces whose owner is gone, ends every process carrying the run's id in its environment, deletes the
workspace and reports the run so the caller can mark it failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from juanie.pipeline.process import find_processes

MARKER = ".juanie-run.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_PASS_THROUGH = (
    "TZ",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)


class WorkspaceError(ValueError):
    pass


@dataclass(frozen=True)
class RecoveredRun:
    """A run that was executing when its server stopped; its processes have been ended."""

    run_id: str
    project: str
    started: float
    killed: int


def check_name(what: str, value: str) -> str:
    if not _NAME.match(value):
        raise WorkspaceError(f"invalid {what} {value!r}: expected letters, digits, '_', '-' or '.' (max 128)")
    return value


def pip_config() -> str | None:
    """The pip config of the user running Juanie (steps get their own HOME, so it is named explicitly)."""
    if os.environ.get("PIP_CONFIG_FILE"):
        return os.environ["PIP_CONFIG_FILE"]
    home = Path.home()
    for candidate in (home / ".config" / "pip" / "pip.conf", home / ".pip" / "pip.conf"):
        if candidate.is_file():
            return str(candidate)
    return None


def base_env(workspace: Path, cache: Path) -> dict[str, str]:
    """The clean environment every step starts from: nothing of the server's secrets, only what tools need."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(workspace / ".home"),
        "TMPDIR": str(workspace / ".tmp"),
        "LANG": "C.UTF-8",
        "PIP_CACHE_DIR": str(cache / "pip"),
        "XDG_CACHE_HOME": str(cache),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PYTHONUNBUFFERED": "1",  # live logs from Python steps
    }
    for key in _PASS_THROUGH:
        if key in os.environ:
            env[key] = os.environ[key]
    for key, value in os.environ.items():
        if key.startswith("PIP_") and key not in ("PIP_CACHE_DIR", "PIP_CONFIG_FILE"):
            env[key] = value
    config = pip_config()
    if config:
        env["PIP_CONFIG_FILE"] = config
    return env


def _owner() -> dict[str, float | int]:
    me = psutil.Process()
    return {"pid": me.pid, "pid_started": me.create_time()}


def write_marker(workspace: Path, run_id: str, project: str) -> None:
    data = {"run_id": run_id, "project": project, "started": time.time(), "pgids": [], "finished": False}
    data.update(_owner())
    _write_json(workspace / MARKER, data)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _read_marker(workspace: Path) -> dict | None:
    try:
        data = json.loads((workspace / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def add_pgid(workspace: Path, pgid: int) -> None:
    data = _read_marker(workspace)
    if data is not None:
        data["pgids"] = [*data.get("pgids", []), pgid]
        _write_json(workspace / MARKER, data)


def mark_finished(workspace: Path) -> None:
    data = _read_marker(workspace)
    if data is not None:
        data["finished"] = True
        _write_json(workspace / MARKER, data)


def copy_artifacts(src: Path, dest: Path, patterns: tuple[str, ...]) -> list[Path]:
    """Copy files matching `patterns` (relative globs) from the checkout into the run's artifact dir."""
    copied = []
    root = src.resolve()
    for pattern in patterns:
        if pattern.startswith("/") or ".." in Path(pattern).parts:
            continue  # artifacts come from inside the workspace only
        for path in sorted(src.glob(pattern)):
            if not path.resolve().is_relative_to(root):
                continue
            target = dest / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                shutil.copytree(path, target, symlinks=True, dirs_exist_ok=True)
            else:
                shutil.copy2(path, target)
            copied.append(target)
    return copied


def _owner_alive(data: dict) -> bool:
    try:
        proc = psutil.Process(int(data.get("pid", -1)))
        return abs(proc.create_time() - float(data.get("pid_started", 0))) < 1.0
    except (psutil.Error, ValueError, TypeError):
        return False


def _end(procs: list[psutil.Process], pgids: list[int], grace: float) -> int:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for pgid in pgids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        _, procs = psutil.wait_procs(procs, timeout=wait)
        if not procs:
            break
    return len(procs)


def recover(workspace_root: Path, grace: float = 5.0) -> list[RecoveredRun]:
    """End what is left of runs whose server died; delete their workspaces; report them."""
    found: list[RecoveredRun] = []
    if not workspace_root.is_dir():
        return found
    for workspace in sorted(p for p in workspace_root.iterdir() if p.is_dir()):
        data = _read_marker(workspace)
        if data is None or data.get("finished") or _owner_alive(data):
            continue
        run_id = str(data.get("run_id", workspace.name))
        match = {"JUANIE_RUN_ID": run_id, "JUANIE_WORKSPACE": str(workspace / "src")}
        procs = find_processes(match)
        pgids = [int(g) for g in data.get("pgids", []) if _group_is_ours(int(g), match)]
        _end(procs, pgids, grace)
        shutil.rmtree(workspace, ignore_errors=True)
        found.append(RecoveredRun(run_id, str(data.get("project", "")), float(data.get("started", 0)), len(procs)))
    return found


def _group_is_ours(pgid: int, match: dict[str, str]) -> bool:
    """A recorded group id is only signalled if a process in it still carries the run's identity."""
    for proc in find_processes({}, pgid=pgid):
        with contextlib.suppress(psutil.Error):
            env = proc.environ()
            if all(env.get(k) == v for k, v in match.items()):
                return True
    return False
