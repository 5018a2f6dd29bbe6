"""Apply, isolation, replacement of killed replicas, unsupported kinds and images: real processes."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from juanie.engines.base import EngineError, EnvRef
from tests.integration.local_engine.le_helpers import deployment, get, service, until

DEV = EnvRef("shop", "dev")
PROD = EnvRef("shop", "prod")
SECRET_VALUE = "s3cr3t-value-that-must-not-leak"


def _manifests(release: Path, replicas: int, color: str, **kw: object) -> list[dict]:
    dep = deployment(
        "api",
        release,
        replicas=replicas,
        env={"COLOR": color},
        extra_env=[
            {
                "name": "DB_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "api-secrets", "key": "password"}},
            },
            {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "api-config", "key": "greeting"}}},
        ],
        **kw,  # type: ignore[arg-type]
    )
    # Kubernetes-style $(VAR) expansion of a secret into the command line: it must still never reach a file.
    dep["spec"]["template"]["spec"]["containers"][0]["args"] += ["--password", "$(DB_PASSWORD)"]
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "api-config"},
            "data": {"greeting": color},
        },
        dep,
        service("api"),
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "default-deny"}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "api"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "api"}},
    ]


def _secrets(env: EnvRef) -> dict[str, dict[str, str]]:
    return {"api-secrets": {"password": f"{SECRET_VALUE}-{env.env}"}}


async def _healthy(engine, env: EnvRef, n: int):  # type: ignore[no-untyped-def]
    async def check():  # type: ignore[no-untyped-def]
        st = await engine.status(env)
        return st if st.health == "Healthy" and st.sync == "Synced" and st.workloads[0].ready == n else None

    return await until(check, timeout=30)


async def test_dev_and_prod_run_isolated_behind_the_gateway(make_engine, gw, release, root) -> None:  # type: ignore[no-untyped-def]
    os.environ["JUANIE_TEST_SERVER_ONLY"] = "server-secret"
    try:
        engine = make_engine(secrets=_secrets)
        await engine.start()
        await engine.apply(DEV, _manifests(release, 1, "blue"), revision="rev-dev-1")
        await engine.apply(PROD, _manifests(release, 3, "red"), revision="rev-prod-1")
        dev = await _healthy(engine, DEV, 1)
        prod = await _healthy(engine, PROD, 3)
    finally:
        os.environ.pop("JUANIE_TEST_SERVER_ONLY", None)

    assert dev.revision == "rev-dev-1" and prod.revision == "rev-prod-1"
    w = prod.workloads[0]
    assert (w.desired, w.ready, w.updated, w.version, w.restarts) == (3, 3, 3, "v1", 0)
    assert any("NetworkPolicy/default-deny" in s and "not enforced locally" in s for s in prod.not_enforced)
    assert any("PodDisruptionBudget/api" in s for s in prod.not_enforced)
    assert not any("ServiceAccount" in s for s in prod.not_enforced)

    ports = [i["port"] for st in (dev, prod) for i in st.workloads[0].instances]
    assert len(set(ports)) == 4
    # Every prod replica answers through the gateway; the route only knows the env's own replicas.
    seen = set()
    for _ in range(30):
        code, body = get(gw.listen, "api.shop-prod.localhost")
        assert code == 200
        seen.add(body["instance"])
    assert seen == {i["name"] for i in prod.workloads[0].instances}
    code, body = get(gw.listen, "api.shop-dev.localhost")
    assert code == 200 and body["instance"] == dev.workloads[0].instances[0]["name"]
    # The path-prefix form reaches the same service.
    code, body = get(gw.listen, "localhost", "/shop-dev/api/")
    assert code == 200 and body["version"] == "v1"

    # Environment isolation: own values, own DATA_DIR, nothing from the server's environment.
    async def env_of(env_host: str, name: str) -> str | None:
        return get(gw.listen, env_host, f"/env?name={name}")[1]["value"]

    assert await env_of("api.shop-dev.localhost", "COLOR") == "blue"
    assert await env_of("api.shop-prod.localhost", "COLOR") == "red"
    assert await env_of("api.shop-prod.localhost", "GREETING") == "red"
    assert await env_of("api.shop-dev.localhost", "DB_PASSWORD") == f"{SECRET_VALUE}-dev"
    assert await env_of("api.shop-dev.localhost", "JUANIE_TEST_SERVER_ONLY") is None
    data_dir = await env_of("api.shop-dev.localhost", "DATA_DIR")
    assert data_dir and Path(data_dir).is_dir() and "/envs/shop-dev/api/" in data_dir

    # Secret values never reach the engine's files.
    for path in (root / "data").rglob("*.json"):
        assert SECRET_VALUE not in path.read_text(), path


async def test_killed_replica_is_replaced_and_healthy_within_10s(make_engine, gw, release) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(secrets=_secrets)
    await engine.start()
    await engine.apply(PROD, _manifests(release, 3, "red"))
    st = await _healthy(engine, PROD, 3)
    victim = st.workloads[0].instances[0]
    os.kill(victim["pid"], signal.SIGKILL)
    t0 = time.monotonic()

    async def replaced():  # type: ignore[no-untyped-def]
        s = await engine.status(PROD)
        inst = {i["name"]: i for i in s.workloads[0].instances}
        v = inst.get(victim["name"])
        ok = (
            s.health == "Healthy"
            and s.sync == "Synced"
            and s.workloads[0].ready == 3
            and v
            and v["pid"] not in (None, victim["pid"])
        )
        return s if ok else None

    s = await until(replaced, timeout=10)
    assert time.monotonic() - t0 < 10
    assert s.workloads[0].restarts == 1
    assert any(victim["name"] in d and "outside Juanie" in d for d in s.drift)
    code, _ = get(gw.listen, "api.shop-prod.localhost")
    assert code == 200


async def test_unsupported_image_and_missing_secret_are_clear_errors(make_engine, release) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine()
    bad = deployment("api", release)
    bad["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"
    with pytest.raises(EngineError, match=r"runs release images 'juanie\.local/"):
        await engine.apply(DEV, [bad])
    with pytest.raises(EngineError, match="Secret 'api-secrets'"):
        await engine.apply(DEV, _manifests(release, 1, "blue"))
    missing = deployment("api", release)
    missing["spec"]["template"]["spec"]["containers"][0]["image"] = "juanie.local/shop/api:abc123"
    with pytest.raises(EngineError, match="does not exist"):
        await engine.apply(DEV, [missing])
    assert (await engine.status(DEV)).health == "Missing"


async def test_release_image_runs_with_release_venv_first_on_path(make_engine, gw, root) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.local_engine.le_helpers import APP

    rel = root / "releases" / "shop" / "api" / "abc123"
    (rel / "venv" / "bin").mkdir(parents=True)
    (rel / "app.py").write_text(APP.read_text())
    # The release's "python" is a wrapper that marks the environment, proving venv/bin comes first on PATH.
    wrapper = rel / "venv" / "bin" / "python"
    wrapper.write_text(f'#!/bin/sh\nexport FROM_RELEASE_VENV=yes\nexec {psutil.Process().exe()} "$@"\n')
    wrapper.chmod(0o755)
    dep = deployment("api", rel)
    c = dep["spec"]["template"]["spec"]["containers"][0]
    c["image"], c["command"], c["args"] = "juanie.local/shop/api:abc123", ["python"], ["app.py"]
    engine = make_engine()
    await engine.start()
    await engine.apply(DEV, [dep, service("api")])
    await _healthy(engine, DEV, 1)
    assert get(gw.listen, "api.shop-dev.localhost", "/env?name=FROM_RELEASE_VENV")[1]["value"] == "yes"
    assert get(gw.listen, "api.shop-dev.localhost", "/env?name=VIRTUAL_ENV")[1]["value"] == str(rel / "venv")
    state = json.loads((root / "data" / "envs" / "shop-dev" / "state.json").read_text())
    assert state["instances"][0]["cmdline"][-2:] == [str(wrapper), "app.py"]  # what the jail runs, found on PATH
