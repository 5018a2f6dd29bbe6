"""`juanie up` and `juanie down`: start the server detached (or in the foreground), stop everything it started."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import typer

from juanie import datadir
from juanie.cli.client import CliError
from juanie.cli.output import console
from juanie.egress import EgressConfigError
from juanie.malloc_arenas import cap_malloc_arenas
from juanie.sandbox import SandboxConfigError
from juanie.settings import load_settings


def _pid_file(data_dir: Path) -> Path:
    return data_dir / "server.pid"


def _running_pid(data_dir: Path) -> int | None:
    try:
        pid = int(_pid_file(data_dir).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _wait_ready(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    return False


def serve_foreground(host: str, port: int, data_dir: Path) -> None:
    os.umask(datadir.UMASK)  # whatever the server creates is its owner's alone: files 0600, directories 0700
    try:  # first of all: one server per data directory (see juanie.datadir); a second one changes nothing
        lock = datadir.claim(data_dir)
    except datadir.DataDirBusy as exc:
        raise CliError(str(exc)) from None
    cap_malloc_arenas()  # before the server's threads start (see juanie.malloc_arenas)
    import uvicorn

    from juanie.api.app import create_app

    settings = load_settings(data_dir=data_dir, host=host, port=port)
    datadir.make_private(settings.data_dir, settings.database_url)
    logging.basicConfig(
        level=os.environ.get("JUANIE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        app = create_app(settings)
    except (SandboxConfigError, EgressConfigError) as exc:  # a bad setting: one line, nothing started or written
        raise CliError(str(exc)) from None
    _pid_file(settings.data_dir).write_text(str(os.getpid()))
    (settings.data_dir / "server.port").write_text(str(port))
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=10,
            # Longer than clients keep an idle connection (httpx 5 s, browsers ~60 s): if the server closed first, a
            # client could send its next request on a connection being closed and see it fail (nginx uses 75 s).
            timeout_keep_alive=75,
        )
    finally:
        try:
            if _pid_file(settings.data_dir).read_text().strip() == str(os.getpid()):
                _pid_file(settings.data_dir).unlink()
        except OSError:
            pass
        os.close(lock)  # released last: the next server may start once this one is gone


def up(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8420, "--port", help="port to listen on"),
    data_dir: Path = typer.Option(
        Path(".juanie"), "--data-dir", envvar="JUANIE_DATA_DIR", help="where Juanie keeps its data"
    ),
    foreground: bool = typer.Option(False, "--foreground", "-f", help="stay attached (logs to the terminal)"),
    wait: float = typer.Option(90.0, help="seconds to wait for the server to become ready"),
) -> None:
    """Start Juanie with its embedded defaults (SQLite, local engine) — detached unless --foreground."""
    data_dir = data_dir.resolve()
    url = f"http://{host}:{port}"
    if foreground:
        serve_foreground(host, port, data_dir)
        return
    pid = _running_pid(data_dir)
    if pid is None:
        pid = datadir.holder(data_dir)  # a server whose pid file is gone still holds the directory's lock
    if pid is None:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        log_path = data_dir / "server.log"
        with os.fdopen(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log_file:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "juanie.cli.main",
                    "up",
                    "--foreground",
                    "--host",
                    host,
                    "--port",
                    str(port),
                    "--data-dir",
                    str(data_dir),
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        with console.status(f"starting Juanie on {url} …"):
            ok = _wait_ready(url, wait, proc)
        if not ok:
            raise CliError(f"Juanie did not become ready within {wait:.0f}s; see {log_path}")
    else:
        if not _wait_ready(url, 5):
            raise CliError(
                f"a Juanie server (pid {pid or 'unknown'}) runs on {data_dir} but {url} does not answer; "
                f"`juanie down` first or pick another --port"
            )
        console.print(f"Juanie is already running (pid {pid or 'unknown'}).")
    console.print(f"[green]✓[/green] Juanie is up at [bold]{url}[/bold]")
    console.print(f"  admin token: {data_dir / 'admin-token'} (mode 0600)")
    console.print(f"  server log:  {data_dir / 'server.log'}")
    console.print("  try: [bold]juanie get projects[/bold] · [bold]juanie create project shop[/bold]")


def down(
    data_dir: Path = typer.Option(Path(".juanie"), "--data-dir", envvar="JUANIE_DATA_DIR"),
    timeout: float = typer.Option(60.0, help="seconds to wait before killing"),
    keep_running: bool = typer.Option(False, "--keep-running",
                                      help="leave the applications and the gateway serving"),
) -> None:
    """Stop the server started by `juanie up` — and, unless --keep-running, every process it started."""
    data_dir = data_dir.resolve()
    pid = _running_pid(data_dir)
    if pid is None:
        stopped = _stop_leftovers(data_dir) if not keep_running else 0
        console.print("Juanie is not running." + (f" Stopped {stopped} leftover processes." if stopped else ""))
        return
    asked = False
    if not keep_running:
        asked = _ask_to_stop_data_plane(data_dir)
    if not asked:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _running_pid(data_dir) == pid:
        time.sleep(0.2)
    if _running_pid(data_dir) == pid:
        os.kill(pid, signal.SIGKILL)
    leftovers = _stop_leftovers(data_dir) if not keep_running else 0
    extra = f"; stopped {leftovers} leftover processes" if leftovers else ""
    console.print(f"[green]✓[/green] Juanie stopped (pid {pid}){extra}.")


def _ask_to_stop_data_plane(data_dir: Path) -> bool:
    """Ask the server to stop its data plane on the way out (it knows its processes best)."""
    token_file = data_dir / "admin-token"
    port_file = data_dir / "server.port"
    try:
        token = token_file.read_text().strip()
        port = int(port_file.read_text().strip())
        response = httpx.post(f"http://127.0.0.1:{port}/api/system/down", json={"stop_data_plane": True},
                              headers={"Authorization": f"Bearer {token}"}, timeout=10)
        return response.status_code == 200
    except (OSError, ValueError, httpx.HTTPError):
        return False


def _stop_leftovers(data_dir: Path) -> int:
    """Processes started for this data directory that outlived the server (replicas, the gateway): stopped."""
    import psutil

    marker = str(data_dir)
    victims = []
    for proc in psutil.process_iter(["pid", "cmdline", "environ"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            env = proc.info.get("environ") or {}
        except (psutil.Error, TypeError):
            continue
        if proc.pid == os.getpid():
            continue
        if ("juanie.engines.local.gateway" in cmd and marker in cmd) or marker in env.get("DATA_DIR", ""):
            victims.append(proc)
    for proc in victims:
        try:
            os.killpg(proc.pid, signal.SIGTERM) if os.getpgid(proc.pid) == proc.pid else proc.terminate()
        except (OSError, psutil.Error):
            pass
    _, alive = psutil.wait_procs(victims, timeout=10)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    return len(victims)
