"""Drift, autoscaling, logs, two-track (canary) routing and weights: real processes and the real gateway."""

from __future__ import annotations

import asyncio
import json

import httpx

from juanie.engines.base import EnvRef
from juanie.engines.local import LogFilter
from tests.integration.local_engine.le_helpers import deployment, get, service, until

PROD = EnvRef("shop", "prod")
HOST = "api.shop-prod.localhost"


async def _when(engine, pred, timeout: float = 30):  # type: ignore[no-untyped-def]
    async def check():  # type: ignore[no-untyped-def]
        st = await engine.status(PROD)
        return st if pred(st) else None

    return await until(check, timeout=timeout)


def _healthy(st) -> bool:  # type: ignore[no-untyped-def]
    return st.health == "Healthy" and st.sync == "Synced"


async def test_hand_edits_of_state_and_gateway_routes_are_reported_and_corrected(
    make_engine, gw, release, root
) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(route_check_interval=0.3)
    await engine.start()
    canary = deployment("api-canary", release, version="v2", service="api", track="canary")
    await engine.apply(PROD, [deployment("api", release), canary, service("api")])
    await _when(engine, lambda s: _healthy(s) and all(w.ready == 1 for w in s.workloads))

    # Someone edits the state file by hand.
    path = root / "data" / "envs" / "shop-prod" / "state.json"
    doc = json.loads(path.read_text())
    doc["instances"][0]["port"] = 1
    path.write_text(json.dumps(doc))
    st = await _when(engine, lambda s: any("state.json was edited" in d for d in s.drift), timeout=10)
    await until(lambda: _async(json.loads(path.read_text())["instances"][0]["port"] != 1), timeout=10)

    # Someone moves all traffic to the canary through the gateway's admin API.
    token = (gw.state_dir / "admin-token").read_text().strip()
    r = httpx.post(
        f"http://{gw.admin}/routes/shop-prod/api/weights",
        json={"stable": 0, "canary": 100},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200
    st = await _when(engine, lambda s: any("HTTPRoute/shop-prod/api" in d for d in s.drift), timeout=10)

    def restored():  # type: ignore[no-untyped-def]
        headers = {"Authorization": f"Bearer {token}"}
        routes = httpx.get(f"http://{gw.admin}/routes", headers=headers).json()["routes"]
        return {b["track"]: b["weight"] for b in routes[0]["backends"]} == {"stable": 100, "canary": 0}

    await until(lambda: _async(restored()), timeout=10)
    assert st.health == "Healthy"


async def _async(value: object) -> object:
    return value


async def test_canary_track_weights_header_routing_and_signals(make_engine, gw, release) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine()
    await engine.start()
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "api"},
        "spec": {
            "rules": [{"backendRefs": [{"name": "api-stable", "weight": 100}, {"name": "api-canary", "weight": 0}]}]
        },
    }
    manifests = [
        deployment("api", release, version="v1"),
        deployment("api-canary", release, version="v2", service="api", track="canary"),
        service("api"),
        {**service("api-stable", "api"), "spec": {"selector": {"app.kubernetes.io/name": "api"}}},
        {
            **service("api-canary", "api"),
            "spec": {"selector": {"app.kubernetes.io/name": "api", "juanie.dev/track": "canary"}},
        },
        route,
    ]
    await engine.apply(PROD, manifests, revision="r1")
    await _when(engine, lambda s: _healthy(s) and all(w.ready == 1 for w in s.workloads))
    assert {get(gw.listen, HOST)[1]["version"] for _ in range(20)} == {"v1"}
    # Testers reach the canary by header whatever the weights.
    conn_versions = set()
    for _ in range(5):
        r = httpx.get(f"http://{gw.listen}/", headers={"Host": HOST, "x-juanie-track": "canary"})
        conn_versions.add(r.json()["version"])
    assert conn_versions == {"v2"}

    await engine.set_weights(PROD, "api", {"stable": 0, "canary": 100})
    assert {get(gw.listen, HOST)[1]["version"] for _ in range(20)} == {"v2"}
    # Re-applying the same manifests keeps the weights the strategy set.
    await engine.apply(PROD, manifests, revision="r1")
    assert {get(gw.listen, HOST)[1]["version"] for _ in range(10)} == {"v2"}

    sig = await engine.signals(PROD, "api", "v2", 60)
    assert sig.requests >= 35 and sig.errors == 0 and sig.latency_p50 is not None
    st = await engine.status(PROD)
    assert {w.name: w.version for w in st.workloads} == {"api": "v1", "api-canary": "v2"}


async def test_hpa_scales_up_on_measured_cpu(make_engine, release) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine()
    await engine.start()
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
                }
            ],
        },
    }
    burner = deployment("api", release, env={"APP_BURN": "1", "APP_BURN_SECONDS": "30"}, cpu="100m")
    await engine.apply(PROD, [burner, service("api"), hpa])
    st = await _when(engine, lambda s: s.workloads[0].desired >= 2, timeout=30)
    assert st.workloads[0].desired <= 3
    assert max(i["cpu_cores"] for i in st.workloads[0].instances) > 0.05
    await _when(engine, lambda s: s.workloads[0].ready >= 2, timeout=30)
    # Tear down early: the burners are bounded, but the machine is shared.
    await engine.delete(PROD)


async def test_logs_are_labelled_parsed_and_followable(make_engine, gw, release) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine()
    await engine.start()
    await engine.apply(PROD, [deployment("api", release, version="v7"), service("api")])
    st = await _when(engine, _healthy)
    instance = st.workloads[0].instances[0]["name"]

    follower = engine.follow(PROD, LogFilter(service="api", stream="stderr"))
    first = asyncio.ensure_future(follower.__anext__())
    get(gw.listen, HOST, "/log?marker-1")
    rec = await asyncio.wait_for(first, timeout=10)
    assert rec.stream == "stderr" and "marker-1" in rec.raw and rec.level == "error"
    assert (rec.project, rec.env, rec.service, rec.version, rec.instance) == (
        "shop",
        "prod",
        "api",
        "v7",
        instance,
    )
    await follower.aclose()

    def logs(**kw):  # type: ignore[no-untyped-def]
        return engine.read_logs(PROD, LogFilter(**kw))

    warn = [r for r in logs(level="warning") if r.msg == "asked to log"]
    assert warn and warn[0].fields["query"] == "marker-1" and warn[0].stream == "stdout"
    assert any(r.raw == "plain line marker-1" and r.level == "info" for r in logs(stream="stdout"))
    assert all(r.stream == "stderr" for r in logs(stream="stderr"))
    assert logs(contains="listening")[0].fields["version"] == "v7"
    assert logs(instance="nope") == []
