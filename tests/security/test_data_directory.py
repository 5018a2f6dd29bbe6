"""The data directory on real servers: one server at a time, and nobody but its owner can read it.

A second `juanie up` on a directory a server already uses used to run its migrations, rewrite the pid file, start
controllers and a gateway beside the first. And the directory, its secret key, admin token and database were
readable by every user of the machine when the umask allowed it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from tests.server_support import start_server, stop_everything
from tests.support import free_port

QUIET = {"JUANIE_CONTROLLERS": "0"}  # nothing writes to the database on its own while the second server tries
SECRET_FILES = ("secret.key", "admin-token", "juanie.db")


def _snapshot(data: Path) -> dict[str, tuple[int, bytes]]:
    names = ("server.pid", "server.port", "server.lock", "admin-token", "secret.key", "juanie.db", "juanie.db-wal")
    return {name: (path.stat().st_mtime_ns, path.read_bytes()) for name in names if (path := data / name).exists()}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_second_server_on_the_same_data_directory_stops_and_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server(data, env=QUIET)
    try:
        before = _snapshot(data)
        assert {"server.pid", "admin-token", "juanie.db"} <= set(before)
        second = subprocess.run(
            [sys.executable, "-m", "juanie.cli.main", "up", "--foreground", "--port", str(free_port()),
             "--data-dir", str(data)],
            env={**os.environ, **QUIET}, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
        said = " ".join((second.stdout + second.stderr).split())
        assert second.returncode != 0, said
        assert "already using the data directory" in said and f"pid {first.proc.pid}" in said, said
        assert "Traceback" not in said
        assert _snapshot(data) == before  # no migration, no pid file or port rewritten, no admin token issued
        assert first.proc.poll() is None
        assert httpx.get(first.url + "/readyz").status_code == 200
        assert first.ok("GET", "/api/projects")["items"] == []  # and it still answers with its token
    finally:
        stop_everything(first)


def test_the_data_directory_and_its_secrets_are_the_owners_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)  # as an older install, or a loose umask, left it
    server = start_server(data, env=QUIET)
    try:
        assert _mode(data) == 0o700
        for name in SECRET_FILES:
            assert _mode(data / name) == 0o600, name
        loose = [str(p) for p in data.rglob("*") if not p.is_symlink() and _mode(p) & 0o077]
        assert not loose, f"readable by others: {loose}"
    finally:
        stop_everything(server)
    data.chmod(0o755)
    for name in SECRET_FILES:
        (data / name).chmod(0o644)
    server = start_server(data, env=QUIET)  # a restart tightens what was loosened
    try:
        assert _mode(data) == 0o700
        assert {name: _mode(data / name) for name in SECRET_FILES} == dict.fromkeys(SECRET_FILES, 0o600)
    finally:
        stop_everything(server)
