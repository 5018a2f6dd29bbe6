"""One owner per namespace and per hostname on the local engine: real replicas behind a real gateway.

The control plane never gives one namespace to two environments; the engine holds the line too. Another environment
naming the same namespace may not apply to it, read its status or logs, move its traffic or delete it; and an
HTTPRoute of another namespace cannot take a hostname an earlier environment serves (nor any `<svc>.<ns>.localhost`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from juanie.engines.base import EngineError, EnvRef
from tests.integration.local_engine.le_helpers import deployment, get, service, until

OWNER = EnvRef("shop", "prod")  # namespace shop-prod
INTRUDER_SAME_NS = EnvRef("evil", "dev", "shop-prod")
INTRUDER = EnvRef("evil", "dev")  # namespace evil-dev


def _route(hostnames: list[str]) -> dict:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "api"},
            "spec": {"hostnames": hostnames, "rules": [{"backendRefs": [{"name": "api", "port": 80, "weight": 100}]}]}}


def _app(release: Path, version: str, hostnames: list[str]) -> list[dict]:
    return [deployment("api", release, version=version), service("api"), _route(hostnames)]


async def _ready(engine, env: EnvRef) -> None:  # type: ignore[no-untyped-def]
    async def check() -> bool:
        st = await engine.status(env)
        return bool(st.workloads) and st.workloads[0].ready == 1 and st.sync == "Synced"

    await until(check, timeout=30)


async def test_another_environment_cannot_act_on_an_owned_namespace(make_engine, release) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine()
    await engine.start()
    await engine.apply(OWNER, _app(release, "a1", []), revision="owner-1")
    await _ready(engine, OWNER)
    pids = {i["pid"] for i in (await engine.status(OWNER)).workloads[0].instances}

    for attempt in (
        engine.apply(INTRUDER_SAME_NS, _app(release, "b1", []), revision="evil-1"),
        engine.status(INTRUDER_SAME_NS),
        engine.set_weights(INTRUDER_SAME_NS, "api", {"stable": 0, "canary": 100}),
        engine.signals(INTRUDER_SAME_NS, "api", "a1", 60),
        engine.delete(INTRUDER_SAME_NS),
    ):
        with pytest.raises(EngineError, match="namespace shop-prod belongs to shop/prod, not to evil/dev"):
            await attempt
    with pytest.raises(EngineError, match="belongs to shop/prod"):
        engine.read_logs(INTRUDER_SAME_NS)
    with pytest.raises(EngineError, match="belongs to shop/prod"):
        engine.follow(INTRUDER_SAME_NS)

    after = await engine.status(OWNER)
    assert after.revision == "owner-1" and {i["pid"] for i in after.workloads[0].instances} == pids
    assert {w.version for w in after.workloads} == {"a1"}


async def test_a_later_environment_cannot_take_a_served_hostname(make_engine, gw, release) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine()
    await engine.start()
    await engine.apply(OWNER, _app(release, "a1", ["pay.example.com"]), revision="owner-1")
    await _ready(engine, OWNER)
    # The intruder names its own namespace but claims the owner's hostname and the owner's generated host.
    await engine.apply(INTRUDER, _app(release, "b1", ["pay.example.com", "api.shop-prod.localhost"]),
                       revision="evil-1")
    await until(lambda: _answers(gw.listen, "api.evil-dev.localhost", "b1"), timeout=30)
    for _ in range(20):
        assert get(gw.listen, "pay.example.com")[1]["version"] == "a1"
        assert get(gw.listen, "api.shop-prod.localhost")[1]["version"] == "a1"


async def _answers(listen: str, host: str, version: str) -> bool:
    code, body = get(listen, host)
    return code == 200 and body.get("version") == version
