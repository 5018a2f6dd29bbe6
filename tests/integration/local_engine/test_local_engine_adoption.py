"""The data plane outlives the control plane: adoption after a clean stop and after kill -9 under load."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psutil

from juanie.engines.base import EnvRef
from tests.integration.local_engine.le_helpers import HERE, LoadProcess, deployment, get, service, until, wait_until

PROD = EnvRef("shop", "prod")
HOST = "api.shop-prod.localhost"


async def _ready(value: bool) -> bool:
    return value


def _snapshot(st) -> dict[str, tuple[int, float]]:  # type: ignore[no-untyped-def]
    return {i["name"]: (i["pid"], i["started_at"]) for w in st.workloads for i in w.instances}


async def test_new_engine_adopts_running_processes_without_restarting_them(make_engine, gw, release) -> None:  # type: ignore[no-untyped-def]
    first = make_engine()
    await first.start()
    await first.apply(PROD, [deployment("api", release, replicas=2), service("api")], revision="r1")

    async def healthy(engine):  # type: ignore[no-untyped-def]
        st = await engine.status(PROD)
        return st if st.health == "Healthy" and st.sync == "Synced" and st.workloads[0].ready == 2 else None

    before = await until(lambda: healthy(first), timeout=30)
    await first.stop(keep_running=True)
    for pid, _ in _snapshot(before).values():
        assert psutil.Process(pid).is_running()
    assert get(gw.listen, HOST)[0] == 200  # still serving with no engine at all

    second = make_engine()
    await second.start()
    after = await until(lambda: healthy(second), timeout=10)
    assert _snapshot(after) == _snapshot(before)
    assert after.workloads[0].restarts == 0 and after.revision == "r1" and after.sync == "Synced"
    assert not after.drift
    # Supervision resumed: a replica killed now is replaced by the new engine.
    victim = next(iter(_snapshot(after).values()))[0]
    os.kill(victim, signal.SIGKILL)
    st = await until(
        lambda: _ready_then(second, lambda s: s.workloads[0].restarts == 1 and s.workloads[0].ready == 2),
        timeout=10,
    )
    assert victim not in {p for p, _ in _snapshot(st).values()}


async def _ready_then(engine, pred):  # type: ignore[no-untyped-def]
    st = await engine.status(PROD)
    return st if pred(st) else None


async def test_adoption_refuses_a_reused_pid(make_engine, release, root) -> None:  # type: ignore[no-untyped-def]
    first = make_engine()
    await first.start()
    await first.apply(PROD, [deployment("api", release), service("api")])
    st = await until(lambda: _ready_then(first, lambda s: s.health == "Healthy"), timeout=30)
    await first.stop(keep_running=True)
    # Pretend the recorded process started at another time: same pid, different identity.
    path = root / "data" / "envs" / "shop-prod" / "state.json"
    doc = json.loads(path.read_text())
    doc["instances"][0]["create_time"] -= 1000
    path.write_text(json.dumps(doc))
    old_pid = st.workloads[0].instances[0]["pid"]
    second = make_engine()
    await second.start()
    st = await until(lambda: _ready_then(second, lambda s: s.health == "Healthy"), timeout=30)
    assert st.workloads[0].instances[0]["pid"] != old_pid
    assert any("not running at adoption" in d for d in st.drift)
    os.kill(old_pid, signal.SIGKILL)  # the impostor is not the engine's any more; the test cleans it up


async def test_kill_9_of_the_server_under_load_fails_no_request_and_restart_adopts(
    make_engine, gw, release, root
) -> None:  # type: ignore[no-untyped-def]
    manifests = root / "manifests.json"
    manifests.write_text(json.dumps([deployment("api", release, replicas=3), service("api")]))
    status_file = root / "host-status.json"
    host = subprocess.Popen(
        [sys.executable, str(HERE / "apps" / "engine_host.py"), str(root / "data"), str(gw.state_dir),
         gw.listen, gw.admin, str(manifests), str(status_file)],
        start_new_session=True,
    )  # fmt: skip
    try:

        def host_status():  # type: ignore[no-untyped-def]
            doc = json.loads(status_file.read_text())
            return (
                doc
                if doc["health"] == "Healthy" and doc["sync"] == "Synced" and doc["workloads"][0]["ready"] == 3
                else None
            )

        before = wait_until(host_status, timeout=30)
        load = LoadProcess.start(gw.listen, HOST, root / "load.json", rate=250, workers=8, seconds=60)
        try:
            await until(lambda: _ready(load.progress()["ok"] > 200), timeout=20)
            os.killpg(host.pid, signal.SIGKILL)
            host.wait(timeout=10)
            mark = load.progress()["ok"]
            await until(lambda: _ready(load.progress()["ok"] > mark + 300), timeout=20)  # serving headless

            engine = make_engine()
            await engine.start()
            st = await until(
                lambda: _ready_then(engine, lambda s: s.health == "Healthy" and s.workloads[0].ready == 3),
                timeout=10,
            )
            mark = load.progress()["ok"]
            await until(lambda: _ready(load.progress()["ok"] > mark + 200), timeout=20)
            report = load.stop()
        finally:
            load.kill()
    finally:
        if host.poll() is None:
            os.killpg(host.pid, signal.SIGKILL)
            host.wait(timeout=10)

    assert report["failed"] == 0, report["failures"][:5]
    pids_before = {i["name"]: i["pid"] for i in before["workloads"][0]["instances"]}
    pids_after = {i["name"]: i["pid"] for i in st.workloads[0].instances}
    assert pids_after == pids_before
    assert st.workloads[0].restarts == 0 and st.revision == "r1" and st.sync == "Synced"
