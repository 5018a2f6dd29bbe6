"""Code a project brings cannot reach the control plane or another project: the attacks, tried for real.

A real server with the local engine runs two projects built from the same small repository: `victim`, then
`attacker`. The attacker's build step and its deployed service each try to read the server's keys, token and
database, list and write its data directory and the victim's release, read the server's `/proc/<pid>/environ`, and
signal or ptrace the server, the gateway and the victim's service. Every attempt must fail while the build itself
still succeeds, `pip install` included. Reverting the sandbox (running steps and services as the server's own user
in the host's namespaces) lets every one of these through.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.server_support import Server, git, start_server, wait_run
from tests.support import free_port, wait_until

pytestmark = pytest.mark.slow

# Each check prints "BLOCKED <name>" or "ESCAPED <name>"; the step itself always succeeds.
STEP_ATTACKS = r"""
check() { n=$1; shift; if "$@" >/dev/null 2>&1; then echo "ESCAPED $n"; else echo "BLOCKED $n"; fi; }
check cat-admin-token cat "$T_DATA/admin-token"
check cat-secret-key cat "$T_DATA/secret.key"
check read-database cat "$T_DATA/juanie.db"
check ls-data-dir ls "$T_DATA"
check ls-victim-release ls "$T_DATA/releases/victim"
check write-data-dir touch "$T_DATA/pwned-by-step"
check write-victim-release touch "$T_DATA/releases/victim/pwned-by-step"
check server-environ cat "/proc/$T_SERVER_PID/environ"
check kill-server kill -0 "$T_SERVER_PID"
check kill-gateway kill -0 "$T_GATEWAY_PID"
echo "UID $(id -u)"
"""

SERVICE = r'''
"""Answers every request with the outcome of the attacks named in the query string, as JSON."""
import ctypes, json, os, sys, urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer


def attempt(action):
    try:
        action()
        return "escaped"
    except Exception as exc:
        return "blocked: " + type(exc).__name__


def ptrace(pid):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, int(pid), None, None) != 0:  # PTRACE_ATTACH
        raise OSError(ctypes.get_errno(), "ptrace")


def attacks(q):
    data, release = q["data"], os.path.join(q["data"], "releases", "victim")
    out = {
        "read-admin-token": attempt(lambda: open(os.path.join(data, "admin-token")).read()),
        "read-secret-key": attempt(lambda: open(os.path.join(data, "secret.key")).read()),
        "read-database": attempt(lambda: open(os.path.join(data, "juanie.db"), "rb").read(16)),
        "list-data-dir": attempt(lambda: os.listdir(data)),
        "list-victim-release": attempt(lambda: os.listdir(release)),
        "write-data-dir": attempt(lambda: open(os.path.join(data, "pwned-by-service"), "w").write("x")),
        "write-victim-release": attempt(lambda: open(os.path.join(release, "pwned-by-service"), "w").write("x")),
        "write-own-release": attempt(lambda: open("pwned-own-release", "w").write("x")),
        "server-environ": attempt(lambda: open(f"/proc/{q['server']}/environ", "rb").read()),
    }
    for who in ("server", "gateway", "victim"):
        out[f"kill-{who}"] = attempt(lambda p=q[who]: os.kill(int(p), 0))
        out[f"ptrace-{who}"] = attempt(lambda p=q[who]: ptrace(p))
    out["uid"] = os.getuid()
    return out


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        body = json.dumps(attacks(query) if "data" in query else {"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
'''


def _spec(name: str) -> str:
    return f"""version: 1
project:
  name: {name}
services:
  web:
    run: python web.py
    port: 8000
pipeline:
  build:
    run: bash attacks.sh
"""


def _repository(path: Path, name: str, data_dir: Path, server_pid: int, gateway_pid: int, attack: bool) -> Path:
    path.mkdir(parents=True)
    (path / "juanie.yaml").write_text(_spec(name))
    (path / "web.py").write_text(SERVICE)
    (path / "requirements.txt").write_text("iniconfig\n")  # the build must still install packages
    (path / "attacks.sh").write_text(
        f"T_DATA={data_dir}; T_SERVER_PID={server_pid}; T_GATEWAY_PID={gateway_pid}\n{STEP_ATTACKS}"
        if attack
        else 'echo "UID $(id -u)"\n'
    )
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "a service that tries everything")
    return path


def _build_and_run(server: Server, name: str, source: Path) -> dict[str, Any]:
    server.ok("POST", "/api/projects", json={"name": name, "repo_url": str(source)})
    wait_until(lambda: server.ok("GET", f"/api/projects/{name}")["status"] == "active", timeout=60)
    run = wait_run(server, server.ok("POST", f"/api/projects/{name}/runs", json={"ref": "main"})["id"])
    logs = server.ok("GET", f"/api/runs/{run['id']}/logs")
    assert run["status"] == "succeeded", logs
    release = server.ok("GET", f"/api/projects/{name}/releases")["items"][0]["version"]
    server.ok("POST", f"/api/projects/{name}/deploy", json={"env": "dev", "release": release, "reason": "test"})
    status_path = f"/api/projects/{name}/environments/dev/status"
    status = wait_until(lambda: (s := server.ok("GET", status_path))["health"] == "Healthy" and s,
                        timeout=120, message=f"{name} live in dev")  # fmt: skip
    return {"run": run, "logs": logs, "status": status}


def _lines(logs: Any) -> list[str]:
    items = logs["items"] if isinstance(logs, dict) else logs
    return [item["text"] for item in items]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("sandbox")
    gateway_port = free_port()
    server = start_server(base / "data", env={"JUANIE_ENGINE": "local", "JUANIE_GATEWAY_PORT": str(gateway_port),
                                              "JUANIE_GATEWAY_ADMIN_PORT": str(free_port())})  # fmt: skip
    try:
        data = server.data_dir.resolve()
        gateway_pid = int((data / "gateway" / "gateway.pid").read_text())
        pids = (server.proc.pid, gateway_pid)
        victim = _build_and_run(server, "victim", _repository(base / "victim", "victim", data, *pids, attack=False))
        attacker = _build_and_run(server, "attacker", _repository(base / "attacker", "attacker", data, *pids,
                                                                      attack=True))  # fmt: skip
        yield {"server": server, "data": data, "gateway": f"http://127.0.0.1:{gateway_port}",
               "gateway_pid": gateway_pid, "victim": victim, "attacker": attacker}  # fmt: skip
    finally:
        try:
            server.api("POST", "/api/system/down", json={"stop_data_plane": True})
        finally:
            server.proc.wait(60)
        for proc in psutil.process_iter(["cmdline"]):
            if str(server.data_dir) in " ".join(proc.info["cmdline"] or []):
                proc.kill()


def test_a_pipeline_step_cannot_reach_the_server_or_another_project(world):
    lines = _lines(world["attacker"]["logs"])
    verdicts = [ln for ln in lines if ln.startswith(("BLOCKED ", "ESCAPED "))]
    assert len(verdicts) == 10, lines
    assert [v for v in verdicts if v.startswith("ESCAPED")] == []
    assert not list(world["data"].rglob("pwned-by-step"))
    assert world["server"].proc.poll() is None


def test_the_build_still_installs_packages_inside_the_sandbox(world):
    lines = _lines(world["attacker"]["logs"])
    assert any("Successfully installed iniconfig" in ln for ln in lines), lines
    venv = world["data"] / "releases" / "attacker" / "web"
    assert list(venv.glob("*/venv/lib/python3*/site-packages/iniconfig"))


@pytest.mark.skipif(os.geteuid() != 0, reason="a uid per project needs a server running as root")
def test_each_project_builds_and_runs_under_its_own_unprivileged_uid(world):
    uids = {n: [ln for ln in _lines(world[n]["logs"]) if ln.startswith("UID ")] for n in ("victim", "attacker")}
    victim_uid, attacker_uid = (int(uids[n][0].split()[1]) for n in ("victim", "attacker"))
    assert 0 not in (victim_uid, attacker_uid) and victim_uid != attacker_uid
    for name in ("victim", "attacker"):  # what a project writes is its own and nobody else's
        releases = world["data"] / "releases" / name
        assert releases.stat().st_uid == {"victim": victim_uid, "attacker": attacker_uid}[name]
        assert releases.stat().st_mode & 0o077 == 0


def test_a_deployed_service_cannot_reach_the_server_or_another_project(world):
    victim_pid = next(i["pid"] for w in world["victim"]["status"]["workloads"] for i in w["instances"] if i["pid"])
    query = {"data": str(world["data"]), "server": world["server"].proc.pid, "gateway": world["gateway_pid"],
             "victim": victim_pid}  # fmt: skip
    response = httpx.get(f"{world['gateway']}/attacker-dev/web/", params=query, timeout=30)
    results = response.json()
    uid = results.pop("uid")
    assert set(results) >= {"read-secret-key", "kill-server", "ptrace-gateway", "kill-victim", "write-victim-release"}
    escaped = {name: how for name, how in results.items() if not how.startswith("blocked")}
    assert escaped == {}, json.dumps(results, indent=1)
    assert not list(world["data"].rglob("pwned-by-service")) and not list(world["data"].rglob("pwned-own-release"))
    if os.geteuid() == 0:
        assert uid != 0
    assert psutil.pid_exists(victim_pid) and world["server"].proc.poll() is None


def test_the_data_directory_is_private_to_the_server(world):
    data = world["data"]
    assert data.stat().st_mode & 0o777 == 0o700
    for name in ("admin-token", "secret.key", "juanie.db"):
        assert (data / name).stat().st_mode & 0o077 == 0, name


def test_status_says_how_resource_limits_are_enforced(world):
    limits = world["attacker"]["status"]["workloads"][0]["limits"]  # dev is size S: 500m and 256Mi
    assert limits.startswith("limits: memory 256Mi (") and "cpu 0.5 cores (" in limits, limits
    if os.geteuid() == 0 and Path("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists():
        assert limits == "limits: memory 256Mi (cgroup v1), cpu 0.5 cores (cgroup v1)"
