"""The CLI against a real detached server, as a person would use it after `make up`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import psutil
import pytest

from tests.support import free_port, wait_until

pytestmark = pytest.mark.slow


def _juanie(args: list[str], cwd, env, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "juanie.cli.main", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_up_create_get_and_down(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "JUANIE_URL": f"http://127.0.0.1:{port}",
        "JUANIE_CONFIG": str(tmp_path / "cfg.json"),
        "COLUMNS": "200",
    }
    env.pop("JUANIE_TOKEN", None)
    env.pop("JUANIE_DATA_DIR", None)
    up = _juanie(["up", "--port", str(port)], tmp_path, env)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        assert f"http://127.0.0.1:{port}" in up.stdout and "admin-token" in up.stdout
        token_file = tmp_path / ".juanie" / "admin-token"
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        token = token_file.read_text().strip()
        assert token not in (tmp_path / ".juanie" / "server.log").read_text()
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}

        again = _juanie(["up", "--port", str(port)], tmp_path, env)  # idempotent
        assert again.returncode == 0 and "already running" in again.stdout

        created = _juanie(["create", "project", "shop"], tmp_path, env)
        assert created.returncode == 0, created.stderr
        envs = json.loads(_juanie(["get", "envs", "-p", "shop", "-o", "json"], tmp_path, env).stdout)
        assert [(e["name"], e["replicas"], e["approval"]) for e in envs] == [
            ("dev", 1, "none"),
            ("staging", 2, "optional"),
            ("prod", 3, "required"),
        ]

        table = _juanie(["get", "projects"], tmp_path, env)
        assert "shop" in table.stdout

        secret = _juanie(
            ["secret", "set", "API_KEY", "-p", "shop", "-e", "prod"],
            tmp_path,
            env,
            stdin="cli-planted-value\n",
        )
        assert secret.returncode == 0, secret.stderr
        listing = _juanie(["secret", "list", "-p", "shop", "-e", "prod", "-o", "json"], tmp_path, env)
        assert (
            json.loads(listing.stdout)[0]["name"] == "API_KEY" and "cli-planted-value" not in listing.stdout
        )

        bad = _juanie(["get", "envs", "-p", "nope"], tmp_path, env)
        assert bad.returncode == 1 and "not found" in bad.stderr and "Traceback" not in bad.stderr

        wrong = _juanie(["get", "projects"], tmp_path, {**env, "JUANIE_TOKEN": "jn_wrong"})
        assert wrong.returncode == 1 and "authentication required" in wrong.stderr

        login = _juanie(["login", "--url", f"http://127.0.0.1:{port}", "--token", token], tmp_path, env)
        assert login.returncode == 0 and "admin" in login.stdout
        assert oct((tmp_path / "cfg.json").stat().st_mode & 0o777) == "0o600"
    finally:
        pid = int((tmp_path / ".juanie" / "server.pid").read_text())
        down = _juanie(["down"], tmp_path, env)
        assert down.returncode == 0, down.stderr
        wait_until(
            lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
            timeout=20,
            message="server to exit",
        )
