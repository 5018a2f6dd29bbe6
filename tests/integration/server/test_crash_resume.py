"""The data plane outlives the control plane: kill -9 the server in the middle of a canary under load — no request
fails, no replica is restarted, and the restarted server resumes the rollout from its recorded step."""

from __future__ import annotations

import signal

import psutil
import pytest

from tests.delivery_support import deploy, final, release
from tests.load_support import Load
from tests.server_support import git, microshop_source, start_server
from tests.support import free_port, wait_until

pytestmark = pytest.mark.slow


def _pids(server, env: str) -> dict[str, set[int]]:
    status = server.ok("GET", f"/api/projects/microshop/environments/{env}/status")
    return {w["name"]: {i["pid"] for i in w["instances"]} for w in status["workloads"]}


def test_kill_9_mid_canary_drops_no_request_and_the_rollout_resumes(tmp_path):
    source = microshop_source(tmp_path / "source")
    spec = (source / "juanie.yaml").read_text().replace("""        - {weight: 10, pause: 30s}
        - {weight: 50, pause: 30s}""", """        - {weight: 20, pause: 10s}
        - {weight: 50, pause: 5s}""")
    (source / "juanie.yaml").write_text(spec)
    git(source, "commit", "-qam", "ci: a canary long enough to crash in")
    gateway = free_port()
    env = {"JUANIE_ENGINE": "local", "JUANIE_GATEWAY_PORT": str(gateway),
           "JUANIE_GATEWAY_ADMIN_PORT": str(free_port())}
    port = free_port()
    server = start_server(tmp_path / "data", env=env, port=port)
    try:
        server.ok("POST", "/api/projects", json={"name": "microshop", "repo_url": str(source)})
        server.ok("PUT", "/api/projects/microshop/secrets/PAYMENT_API_KEY", json={"value": "sk-crash"})
        wait_until(lambda: server.ok("GET", "/api/projects/microshop")["status"] == "active", timeout=30)
        good = release(server)
        assert final(server, deploy(server, "staging", good, approve=True)["id"])["status"] == "success"
        (source / "NOTES.md").write_text("a harmless change\n")
        git(source, "add", "-A")
        git(source, "commit", "-qm", "docs: notes")
        healthy = release(server)
        with Load(f"http://127.0.0.1:{gateway}/microshop-staging/payment/", rps=40) as load:
            wait_until(lambda: sum(load.outcomes.values()) > 40, timeout=30, message="load running")
            dep = deploy(server, "staging", healthy, approve=True)
            wait_until(lambda: (server.ok("GET", f"/api/deployments/{dep['id']}").get("weights") or {}).get(
                "canary") == 20, timeout=120, interval=0.2, message="the canary at 20%")
            before = _pids(server, "staging")
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait(10)
            served_at_kill = sum(load.outcomes.values())
            wait_until(lambda: sum(load.outcomes.values()) > served_at_kill + 80, timeout=30,
                       message="the gateway serving while the server is dead")
            server = start_server(tmp_path / "data", env=env, port=port)
            after = _pids(server, "staging")
            assert {k: v for k, v in after.items()} == before, "replicas were restarted instead of adopted"
            done = final(server, dep["id"], timeout=300)
        assert done["status"] == "success", done
        assert load.failed == 0, dict(load.outcomes)
        status = server.ok("GET", "/api/projects/microshop/environments/staging/status")
        assert {w["version"] for w in status["workloads"]} == {healthy}
        assert all(w["restarts"] == 0 for w in status["workloads"])
    finally:
        server.api("POST", "/api/system/down", json={"stop_data_plane": True})
        server.proc.wait(60)
        left = [p for p in psutil.process_iter(["cmdline", "environ"])
                if str(tmp_path / "data") in " ".join(p.info["cmdline"] or [])
                or str(tmp_path / "data") in (p.info.get("environ") or {}).get("DATA_DIR", "")]
        for proc in left:
            proc.kill()
        assert not left, f"left behind: {[p.pid for p in left]}"
