"""A real Juanie server process for integration tests, and a throwaway source repository of microshop."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.support import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]
MICROSHOP = ROOT / "examples" / "microshop"
TEST_REPO_ROOTS = os.path.realpath(tempfile.gettempdir())
"""Where tests keep source repositories (pytest's tmp_path, benches' mkdtemp): the servers they start may use local
repositories there as admins (JUANIE_LOCAL_REPO_ROOTS; a server's default allows none)."""


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def microshop_source(dest: Path) -> Path:
    """A git repository holding a copy of examples/microshop on `main`, as a team's repository would."""
    shutil.copytree(MICROSHOP, dest, ignore=shutil.ignore_patterns(".venv", "__pycache__", "*.db", ".pytest_cache"))
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "microshop: initial import")
    return dest


@dataclass
class Server:
    """A `juanie up --foreground` process; `api()` calls it as the admin."""

    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes]
    token: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.url + path, headers=headers, timeout=60, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.api(method, path, **kwargs)
        assert response.status_code < 400, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def log(self) -> str:
        return (self.data_dir / "server.log").read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_server(data_dir: Path, env: dict[str, str] | None = None, port: int | None = None) -> Server:
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    full_env = {**os.environ, "JUANIE_LOG_LEVEL": "INFO", **(env or {})}
    full_env.pop("JUANIE_DATA_DIR", None)
    full_env.setdefault("JUANIE_LOCAL_REPO_ROOTS", TEST_REPO_ROOTS)
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen([sys.executable, "-m", "juanie.cli.main", "up", "--foreground", "--port", str(port),
                             "--data-dir", str(data_dir)], env=full_env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    server = Server(data_dir, port, proc, extra_env=env or {})
    try:
        wait_until(lambda: proc.poll() is None and httpx.get(server.url + "/readyz").status_code == 200,
                   timeout=60, message="server ready")
    except BaseException:  # a server that never got ready is not left running behind the failure
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        raise
    server.token = (data_dir / "admin-token").read_text().strip()
    return server


def wait_run(server: Server, run_id: int, timeout: float = 240) -> dict[str, Any]:
    return wait_until(lambda: (r := server.ok("GET", f"/api/runs/{run_id}"))["status"] in (
        "succeeded", "failed", "cancelled") and r, timeout=timeout, interval=0.5, message=f"run {run_id} to end")


def register_microshop(server: Server, source: Path, payment_key: str) -> None:
    """microshop as a team registers it: the project from its repository, the payment provider's key as a secret,
    then wait until its environments are active (deploys are refused before)."""
    server.ok("POST", "/api/projects", json={"name": "microshop", "repo_url": str(source)})
    server.ok("PUT", "/api/projects/microshop/secrets/PAYMENT_API_KEY", json={"value": payment_key})
    wait_until(lambda: server.ok("GET", "/api/projects/microshop")["status"] == "active", timeout=60,
               message="microshop active")


def stop_everything(server: Server, timeout: float = 60) -> list[int]:
    """Stop the server and the data plane it started (`POST /api/system/down`), then kill any process still
    running from its data directory and return their pids: an empty list means nothing was left behind."""
    try:
        server.api("POST", "/api/system/down", json={"stop_data_plane": True})
    except httpx.HTTPError:
        server.stop()
    try:
        server.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        server.stop()
    marker = str(server.data_dir)
    leftovers = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            environ = proc.info.get("environ") or {}
        except psutil.Error:
            continue
        if marker in cmdline or marker in environ.get("DATA_DIR", ""):
            leftovers.append(proc.pid)
            proc.kill()
    return leftovers
