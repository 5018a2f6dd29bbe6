"""Reading manifests, building a replica's environment, computing routes: pure, no processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from juanie.engines.base import EngineError
from juanie.engines.local.launch import InstanceIdentity, build_argv, probe_port, resolve_env, resolve_image
from juanie.engines.local.manifests import parse_manifests
from juanie.engines.local.routes import ReadyEndpoint, effective_weights, env_routes
from juanie.engines.local.state import EnvRecord, from_json, secret_data, strip_secrets, to_json


def dep(name: str = "api", **spec: object) -> dict:
    container = {
        "name": name,
        "image": "juanie.local/shop/api:abc",
        "command": ["python"],
        "args": ["-m", "api", "--port", "$(PORT)"],
        "ports": [{"name": "http", "containerPort": 8000}],
        "env": [
            {"name": "A", "value": "1"},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
            {"name": "G", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "g"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 2},
    }
    return {
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/name": "api", "app.kubernetes.io/version": "abc"},
        },
        "spec": {"replicas": 4, "template": {"spec": {"containers": [container]}}, **spec},
    }


CM = {"kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"g": "hello"}}


def test_deployment_becomes_a_workload_with_kubernetes_defaults() -> None:
    d = parse_manifests(
        [
            dep(),
            CM,
            {"kind": "NetworkPolicy", "metadata": {"name": "deny"}},
            {"kind": "Foo", "metadata": {"name": "x"}},
        ]
    )
    w = d.workloads["api"]
    assert (w.service, w.version, w.track, w.replicas) == ("api", "abc", "stable", 4)
    assert (w.max_surge, w.max_unavailable) == (1, 1)  # 25% of 4, surge up, unavailable down
    assert w.readiness and w.readiness.period == 2 and w.readiness.failure_threshold == 3
    assert w.grace_seconds == 30 and w.progress_deadline == 600
    assert d.not_enforced == [
        "NetworkPolicy/deny: not enforced locally (network isolation is not enforced locally)",
        "Foo/x: not enforced locally (the local engine does not run Foo)",
    ]


def test_a_configmap_change_changes_the_template_hash_but_an_unrelated_one_does_not() -> None:
    h1 = parse_manifests([dep(), CM]).workloads["api"].template_hash
    h2 = parse_manifests([dep(), {**CM, "data": {"g": "bye"}}]).workloads["api"].template_hash
    h3 = parse_manifests([dep(), CM, {"kind": "ConfigMap", "metadata": {"name": "other"}, "data": {"x": "1"}}])
    assert h1 != h2 and h3.workloads["api"].template_hash == h1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["spec"]["template"]["spec"].update(containers=[]), "expected at least one container"),
        (lambda d: d["spec"].update(replicas="three"), "spec.replicas: expected an integer >= 0"),
        (
            lambda d: (
                d["spec"]["template"]["spec"]["containers"][0].pop("command")
                and d["spec"]["template"]["spec"]["containers"][0].pop("args")
            ),
            "needs 'command'",
        ),
        (
            lambda d: d["spec"].update(strategy={"rollingUpdate": {"maxSurge": "lots"}}),
            "maxSurge: expected an integer or a percentage",
        ),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(readinessProbe={"grpc": {}}),
            "runs httpGet, tcpSocket and exec probes",
        ),
    ],
)
def test_bad_manifests_say_what_and_where(change, message) -> None:  # type: ignore[no-untyped-def]
    d = dep()
    change(d)
    with pytest.raises(EngineError, match=message) as err:
        parse_manifests([d])
    assert "Deployment/api" in str(err.value)


def test_images_name_release_directories_or_absolute_paths() -> None:
    assert resolve_image("juanie.local/shop/api:abc", Path("/r")) == Path("/r/shop/api/abc")
    assert resolve_image("file:///srv/app", Path("/r")) == Path("/srv/app")
    with pytest.raises(EngineError, match="file:///absolute/path"):
        resolve_image("ghcr.io/x/y:1", Path("/r"))
    with pytest.raises(EngineError, match="absolute path"):
        resolve_image("file://relative", Path("/r"))


def test_replica_environment_is_built_from_the_manifest_only(tmp_path: Path) -> None:
    w = parse_manifests([dep(), CM]).workloads["api"]
    ident = InstanceIdentity("shop", "dev", "shop-dev", "api-1", 41234, tmp_path / "d")
    host = {"PATH": "/usr/bin", "HOME": "/root", "JUANIE_TOKEN": "server-secret"}
    env = resolve_env(
        w,
        ident,
        {"cm": {"g": "hello"}},
        {"s": {"pw": "pw-value-123"}},
        host,
        tmp_path,
        {"": 41234, "http": 41234},
    )
    assert env["PORT"] == "41234" and env["PORT_HTTP"] == "41234" and env["DATA_DIR"] == str(tmp_path / "d")
    assert (env["A"], env["PW"], env["G"], env["CM_g"], env["POD"]) == (
        "1",
        "pw-value-123",
        "hello",
        "hello",
        "api-1",
    )
    assert "JUANIE_TOKEN" not in env and env["JUANIE_ENV"] == "dev"
    assert build_argv(w, env) == ["python", "-m", "api", "--port", "41234"]
    with pytest.raises(EngineError, match="env PW refers to Secret 's', which does not exist"):
        resolve_env(w, ident, {"cm": {"g": "x"}}, {}, host, tmp_path, {})
    with pytest.raises(EngineError, match="key 'pw' in Secret 's'") as err:
        resolve_env(w, ident, {"cm": {"g": "x"}}, {"s": {"other": "pw-value-123"}}, host, tmp_path, {})
    assert "pw-value-123" not in str(err.value)


def test_probe_ports_map_to_the_real_port() -> None:
    w = parse_manifests([dep()]).workloads["api"]
    assert probe_port("http", w, {"http": 5000}, 5000) == 5000
    assert probe_port("8000", w, {"http": 5000}, 5000) == 5000
    assert probe_port("", w, {}, 5000) == 5000


def test_routes_share_track_weight_by_ready_replicas_and_skip_empty_tracks() -> None:
    canary = dep("api-canary")
    canary["metadata"]["annotations"] = {"juanie.dev/track": "canary"}
    svc = {
        "kind": "Service",
        "metadata": {"name": "api"},
        "spec": {"selector": {"app.kubernetes.io/name": "api"}},
    }
    d = parse_manifests([dep(), canary, svc])
    ready = [
        ReadyEndpoint("api", "v1", "127.0.0.1:1"),
        ReadyEndpoint("api", "v1", "127.0.0.1:2"),
        ReadyEndpoint("api", "v2", "127.0.0.1:3"),
    ]
    (route,) = env_routes("shop-prod", d, ready, {"api": {"stable": 90, "canary": 10}})
    assert route["name"] == "shop-prod/api" and route["hosts"] == ["api.shop-prod.localhost"]
    assert route["path_prefix"] == "/shop-prod/api"
    # The canary has no ready replica: its 10 go to stable, shared 2:1 by the ready replicas of each version.
    assert [(b["version"], b["weight"]) for b in route["backends"]] == [("v1", 67), ("v2", 33)]
    assert route["match"] == []  # the canary has no ready replica: no header route to nowhere
    assert effective_weights({"stable": 90, "canary": 10}, {"stable"}) == {"stable": 100, "canary": 0}
    assert effective_weights({"stable": 0, "canary": 100}, {"stable", "canary"}) == {
        "stable": 0,
        "canary": 100,
    }


def test_state_round_trips_and_secret_values_never_reach_disk() -> None:
    rec = EnvRecord("shop", "dev", "shop-dev", revision="r1", weights={"api": {"stable": 100}})
    assert from_json(to_json(rec)) == rec
    with pytest.raises(ValueError, match="version"):
        from_json('{"version": 99}')
    secret = {
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"pw": "aHVudGVyMg=="},
        "stringData": {"k": "v"},
    }
    assert secret_data([secret]) == {"s": {"pw": "hunter2", "k": "v"}}
    stored = strip_secrets([secret])
    assert "hunter2" not in str(stored) and "aHVudGVyMg" not in str(stored) and stored[0]["keys"] == ["k", "pw"]


def test_secret_arguments_are_stored_as_digests_that_adoption_can_still_compare() -> None:
    from juanie.engines.local.procs import cmdline_matches, mask_args

    live = ["/usr/bin/python3", "app.py", "--password", "hunter22"]
    stored = mask_args(live, {"hunter22", "x"})
    assert "hunter22" not in str(stored) and stored[:3] == live[:3] and stored[3].startswith("sha256:")
    assert cmdline_matches(live, stored)
    assert not cmdline_matches([*live[:3], "other"], stored)
    # A launcher re-exec (a shim, a #! line) changes the program but not the arguments.
    assert cmdline_matches(["/opt/py/bin/python3.11", "app.py", "--password", "hunter22"], stored)
