"""Rolling updates under load, stalled rollouts, crash loops, liveness, graceful stops: real processes."""

from __future__ import annotations

import os
import time

import psutil

from juanie.engines.base import EnvRef
from tests.integration.local_engine.le_helpers import LoadProcess, deployment, get, service, until

PROD = EnvRef("shop", "prod")
HOST = "api.shop-prod.localhost"


async def _status_when(engine, pred, timeout: float = 30):  # type: ignore[no-untyped-def]
    async def check():  # type: ignore[no-untyped-def]
        st = await engine.status(PROD)
        return st if pred(st) else None

    return await until(check, timeout=timeout)


def _healthy(n: int, version: str):  # type: ignore[no-untyped-def]
    def pred(st):  # type: ignore[no-untyped-def]
        w = st.workloads[0]
        return st.health == "Healthy" and st.sync == "Synced" and w.ready == n and w.versions == {version: n}

    return pred


async def test_rolling_update_under_steady_load_drops_no_request(make_engine, gw, release, root) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine()
    await engine.start()
    await engine.apply(PROD, [deployment("api", release, replicas=3, version="v1"), service("api")])
    await _status_when(engine, _healthy(3, "v1"))
    old_pids = {i["pid"] for i in (await engine.status(PROD)).workloads[0].instances}

    load = LoadProcess.start(gw.listen, HOST, root / "load.json", rate=300, workers=10, seconds=60)
    try:
        await until(lambda: _ready_async(load.progress()["ok"] > 300), timeout=20)
        seen_counts: list[int] = []

        def watch(st):  # type: ignore[no-untyped-def]
            seen_counts.append(st.workloads[0].ready)
            return _healthy(3, "v2")(st)

        await engine.apply(PROD, [deployment("api", release, replicas=3, version="v2"), service("api")], revision="r2")
        await _status_when(engine, watch, timeout=45)
        mark = load.progress()["versions"].get("v2", 0)
        await until(lambda: _ready_async(load.progress()["versions"].get("v2", 0) > mark + 200), timeout=20)
        report = load.stop()
    finally:
        load.kill()

    assert report["final"] and report["failed"] == 0, report["failures"][:5]
    assert report["rate"] >= 200, f"load ran at {report['rate']:.0f} req/s"
    assert report["versions"].get("v1", 0) > 0 and report["versions"].get("v2", 0) > 0
    # maxUnavailable 0: never fewer than 3 ready replicas during the update.
    assert min(seen_counts) >= 3
    st = await engine.status(PROD)
    assert not old_pids & {i["pid"] for i in st.workloads[0].instances}
    for pid in old_pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def _ready_async(value: bool) -> bool:
    return value


async def test_release_that_never_gets_ready_gets_no_traffic_and_stalls(make_engine, gw, release) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine()
    await engine.start()
    await engine.apply(PROD, [deployment("api", release, replicas=3, version="v1"), service("api")])
    await _status_when(engine, _healthy(3, "v1"))
    bad = deployment("api", release, replicas=3, version="v2", env={"APP_NEVER_READY": "1"}, deadline=2)
    await engine.apply(PROD, [bad, service("api")], revision="r2")

    st = await _status_when(engine, lambda s: s.health == "Degraded", timeout=20)
    w = st.workloads[0]
    assert "rollout stalled" in w.message and "0/3 new replicas ready" in w.message
    assert "readiness probe failed" in w.message and "503" in w.message
    assert w.versions == {"v1": 3} and w.ready == 3
    # maxSurge 1, maxUnavailable 0: exactly one v2 replica was started, and it never receives a request.
    v2 = [i for i in w.instances if i["version"] == "v2"]
    assert len(v2) == 1 and not v2[0]["ready"] and v2[0]["pid"]
    versions = {get(gw.listen, HOST)[1]["version"] for _ in range(40)}
    assert versions == {"v1"}


async def test_crash_loop_backs_off_exponentially_and_is_reported(make_engine, release) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine()
    await engine.start()
    await engine.apply(PROD, [deployment("api", release, env={"APP_CRASH": "1"}), service("api")])
    waits: dict[int, float] = {}  # exit number -> back-off the engine chose after it
    exited: dict[int, float] = {}  # exit number -> when it was noticed
    started: dict[int, float] = {}  # exit number -> when the replica was started again after it

    def pred(st):  # type: ignore[no-untyped-def]
        inst = st.workloads[0].instances[0]
        n = inst["restarts"]
        if n >= 1:
            waits[n], exited[n] = inst["backoff_seconds"], inst["exited_at"]
            if n >= 2 and inst["started_at"] < inst["exited_at"]:
                started[n - 1] = inst["started_at"]  # the start after exit n-1, not yet overwritten
        return st if n >= 5 else None

    st = await _status_when(engine, pred, timeout=30)
    w = st.workloads[0]
    assert w.health == "Degraded" and w.message.startswith("CrashLoopBackOff")
    assert "exited with code 3" in w.message and "APP_CRASH" in w.message
    # Back-off after exits 1, 2, 3, 4, 5: 0, base, 2*base, 4*base, 8*base (kubelet's doubling), base 0.4 s here.
    expected = {n: 0.0 if n == 1 else 0.4 * 2 ** (n - 2) for n in range(1, 6)}
    assert {3, 4} <= waits.keys(), waits  # the 0.8 s and 1.6 s waits are long enough to be seen by any poll
    assert all(abs(waits[n] - expected[n]) < 1e-6 for n in waits), waits
    # The wall clock agrees: no replica came back before its back-off was over (polls may miss some starts).
    measured = {n: started[n] - exited[n] for n in started if n in exited}
    assert measured, (started, exited)
    assert all(measured[n] >= expected[n] - 0.05 for n in measured), measured
    assert any(i["phase"] in ("CrashLoopBackOff", "Restarting") for i in w.instances)


async def test_liveness_exec_probe_failure_restarts_the_replica(make_engine, gw, release) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine()
    await engine.start()
    live = {
        "exec": {"command": ["sh", "-c", 'test ! -f "$DATA_DIR/sick"']},
        "periodSeconds": 0.2,
        "failureThreshold": 2,
    }
    await engine.apply(PROD, [deployment("api", release, liveness=live), service("api")])
    st = await _status_when(engine, _healthy(1, "v1"))
    inst = st.workloads[0].instances[0]
    data_dir = get(gw.listen, HOST, "/env?name=DATA_DIR")[1]["value"]
    open(os.path.join(data_dir, "sick"), "w").close()
    st = await _status_when(engine, lambda s: s.workloads[0].restarts >= 1, timeout=15)
    assert "liveness probe failed" in st.workloads[0].instances[0]["last_exit"]
    os.unlink(os.path.join(data_dir, "sick"))
    st = await _status_when(engine, _healthy(1, "v1"), timeout=15)
    assert st.workloads[0].instances[0]["pid"] != inst["pid"]


async def test_graceful_stop_kills_the_whole_process_group_after_the_grace_period(make_engine, release, root) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine()
    await engine.start()
    stubborn = deployment("api", release, env={"APP_IGNORE_TERM": "1", "APP_CHILD": "1"}, grace=1)
    await engine.apply(PROD, [stubborn, service("api")])
    st = await _status_when(engine, _healthy(1, "v1"))
    pid = st.workloads[0].instances[0]["pid"]
    group = [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    apps = [p for p in group if not psutil.Process(p).cmdline()[0].endswith("bwrap")]
    assert len(apps) == 2  # the app and the child it forked (inside its sandbox, under bubblewrap's processes)
    t0 = time.monotonic()
    await engine.delete(PROD)
    elapsed = time.monotonic() - t0
    for p in group:
        assert not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE
    assert elapsed >= 1.0  # it waited for the grace period before SIGKILL
    assert not (root / "data" / "envs" / "shop-prod").exists()


async def test_well_behaved_app_stops_on_sigterm_before_the_grace_period(make_engine, release) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine()
    await engine.start()
    await engine.apply(PROD, [deployment("api", release, replicas=2, grace=20), service("api")])
    st = await _status_when(engine, _healthy(2, "v1"))
    pids = [i["pid"] for i in st.workloads[0].instances]
    t0 = time.monotonic()
    await engine.apply(PROD, [deployment("api", release, replicas=1, grace=20), service("api")])
    await _status_when(engine, lambda s: len(s.workloads[0].instances) == 1 and s.health == "Healthy")
    assert time.monotonic() - t0 < 10
    assert sum(1 for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE) == 1
    logs = engine.read_logs(PROD)
    assert any(r.msg == "got SIGTERM" for r in logs)
