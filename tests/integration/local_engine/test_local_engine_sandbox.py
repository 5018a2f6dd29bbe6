"""Replicas run sandboxed: `resources.limits` are enforced on real processes and the status says how (a replica
that allocates past its memory limit is killed and restarted), and an exec probe — the manifest's own code — runs
in the replica's sandbox, never as the server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from juanie.engines.base import EnvRef
from tests.integration.local_engine.le_helpers import deployment, service, until

DEV = EnvRef("shop", "dev")
GREEDY = "import os, time; time.sleep(float(os.environ.get('WAIT', '0'))); b = bytearray(300 * 1024 * 1024); " \
         "b[::4096] = b'x' * len(b[::4096]); time.sleep(60)"  # fmt: skip


def _greedy(release: Path, memory: str) -> dict:
    dep = deployment("greedy", release, readiness={"exec": {"command": ["true"]}, "periodSeconds": 0.2})
    container = dep["spec"]["template"]["spec"]["containers"][0]
    container["args"] = ["-c", GREEDY]
    container["resources"] = {"limits": {"memory": memory, "cpu": "250m"}}
    return dep


@pytest.mark.skipif(os.geteuid() != 0, reason="memory limits on a running process need root (cgroups or prlimit)")
async def test_a_replica_past_its_memory_limit_is_killed_and_the_status_names_the_limit(make_engine, release) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine()
    await engine.start()
    await engine.apply(DEV, [_greedy(release, "96Mi"), service("greedy")])

    async def restarted():  # type: ignore[no-untyped-def]
        st = await engine.status(DEV)
        return st if st.workloads and st.workloads[0].restarts >= 1 else None

    st = await until(restarted, timeout=60)
    limits = st.workloads[0].limits
    assert limits.startswith("limits: memory 96Mi (") and "cpu 0.25 cores" in limits, limits


@pytest.mark.skipif(os.geteuid() != 0, reason="memory limits on a running process need root (cgroups or prlimit)")
async def test_the_same_replica_runs_when_its_limit_leaves_room(make_engine, release) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine()
    await engine.start()
    await engine.apply(DEV, [_greedy(release, "1Gi"), service("greedy")])

    async def allocated():  # type: ignore[no-untyped-def]
        st = await engine.status(DEV)
        inst = st.workloads[0].instances if st.workloads else []
        return st if inst and inst[0]["pid"] and _rss_mib(inst[0]["pid"]) >= 250 else None

    st = await until(allocated, timeout=60)
    assert st.workloads[0].restarts == 0


def _rss_mib(pid: int) -> float:
    import psutil

    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 1024**2


async def test_an_exec_probe_runs_in_the_replicas_sandbox_not_as_the_server(make_engine, release, root) -> None:  # type: ignore[no-untyped-def]
    secret = root / "server-secret"
    secret.write_text("s3cr3t")
    secret.chmod(0o600)
    dep = deployment("api", release)
    probe = f'cat {secret} > "$DATA_DIR/stolen" 2>/dev/null; id -u > "$DATA_DIR/probe-uid"; true'
    dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {
        "exec": {"command": ["sh", "-c", probe]}, "periodSeconds": 0.2}  # fmt: skip
    engine = make_engine()
    await engine.start()
    await engine.apply(DEV, [dep, service("api")])
    instance_dirs = root / "data" / "envs" / "shop-dev" / "api"
    uid_file = await until(lambda: _first(instance_dirs.glob("*/probe-uid")), timeout=30)
    assert "s3cr3t" not in "".join(p.read_text() for p in instance_dirs.glob("*/stolen"))
    if os.geteuid() == 0:
        assert int(uid_file.read_text()) != 0


async def _first(paths):  # type: ignore[no-untyped-def]
    found = [p for p in paths if p.read_text().strip()]
    return found[0] if found else None
