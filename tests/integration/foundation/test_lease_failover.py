"""Two real servers on one PostgreSQL database: one leader runs the controllers; kill it, the other takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.support import free_port, wait_until

pytestmark = pytest.mark.slow


def _start(name: str, port: int, data_dir, url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "JUANIE_DATABASE_URL": url,
        "JUANIE_SERVER_ID": name,
        "JUANIE_SECRET_KEY": "shared-key-for-both-servers",
        "JUANIE_LEASE_SECONDS": "10",
    }
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "juanie.cli.main",
            "up",
            "--foreground",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_only_the_lease_holder_runs_controllers_and_the_other_takes_over(postgres, tmp_path):
    url = postgres.fresh()
    servers = {}
    try:
        for name in ("server-a", "server-b"):
            port = free_port()
            data_dir = tmp_path / name
            data_dir.mkdir()
            servers[name] = (_start(name, port, data_dir, url), f"http://127.0.0.1:{port}", data_dir)
            wait_until(
                lambda u=f"http://127.0.0.1:{port}": httpx.get(u + "/readyz").status_code == 200,
                timeout=60,
                message=f"{name} ready",
            )
        token = next(
            (d / "admin-token").read_text().strip()
            for _, _, d in servers.values()
            if (d / "admin-token").exists()
        )
        headers = {"Authorization": f"Bearer {token}"}

        def leaders() -> list[str]:
            return [
                name
                for name, (_, base, _) in servers.items()
                if httpx.get(base + "/api/system", headers=headers, timeout=5).json()["leader"]
            ]

        wait_until(lambda: len(leaders()) == 1, timeout=30, message="exactly one leader")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # never two at once, sampled over a few renewals
            assert len(leaders()) <= 1
            time.sleep(0.2)
        leader = leaders()[0]
        follower = next(n for n in servers if n != leader)

        # A change made through the follower is converged by the leader's controller.
        follower_url = servers[follower][1]
        assert (
            httpx.post(follower_url + "/api/projects", json={"name": "one"}, headers=headers).status_code
            == 201
        )

        def converged_by(project: str) -> set[str]:
            events = httpx.get(
                follower_url + "/api/events",
                params={"project": project, "kind": "environment.transitioned"},
                headers=headers,
            ).json()["items"]
            return {e["actor"] for e in events} if len(events) == 3 else set()

        actors = wait_until(lambda: converged_by("one"), timeout=30, message="project one converged")
        assert actors == {f"controller:environments@{leader}"}

        # Kill the leader without warning; the follower must take over within 15 s.
        servers[leader][0].send_signal(signal.SIGKILL)
        servers[leader][0].wait(10)
        killed_at = time.monotonic()
        del servers[leader]
        wait_until(lambda: leaders() == [follower], timeout=20, interval=0.2, message="takeover")
        takeover = time.monotonic() - killed_at
        print(f"\nleader takeover after kill -9: {takeover:.1f}s")
        assert takeover < 15, f"takeover took {takeover:.1f}s"

        assert (
            httpx.post(follower_url + "/api/projects", json={"name": "two"}, headers=headers).status_code
            == 201
        )
        actors = wait_until(lambda: converged_by("two"), timeout=30, message="project two converged")
        assert actors == {f"controller:environments@{follower}"}
    finally:
        for proc, _, _data_dir in servers.values():
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
