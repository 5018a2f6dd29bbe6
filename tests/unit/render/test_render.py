"""The renderer: what the manifests carry, determinism, and how small a release's diff is."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from juanie.render import ReleaseRef, lint_manifests, render_manifests, render_tree, score
from juanie.render.jsonpatch import apply, diff
from juanie.spec import load_spec, parse_spec

MICROSHOP = Path(__file__).resolve().parents[3] / "examples" / "microshop" / "juanie.yaml"


@pytest.fixture(scope="module")
def spec():
    return load_spec(MICROSHOP)


def _by(objs, kind, name):
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def test_deployment_carries_what_the_local_engine_runs(spec) -> None:
    objs = render_manifests(spec, "prod", ReleaseRef("abc1234"))
    dep = _by(objs, "Deployment", "order")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "order"
    assert labels["app.kubernetes.io/part-of"] == "microshop"
    assert labels["app.kubernetes.io/version"] == "abc1234"
    assert labels["juanie.dev/env"] == "prod"
    assert dep["spec"]["replicas"] == 3
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "juanie.local/microshop/order:abc1234"
    assert container["command"] == ["python"] and container["args"] == ["-m", "microshop.order"]
    assert container["ports"] == [{"name": "http", "containerPort": 8003, "protocol": "TCP"}]
    env = {e["name"]: e for e in container["env"]}
    assert env["PORT"]["value"] == "8003"
    assert env["USER_URL"]["value"] == "http://user:8001"
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "microshop-postgres"
    assert env["AMQP_URL"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert pod["terminationGracePeriodSeconds"] == 30
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_secrets_are_references_and_never_rendered_as_objects(spec) -> None:
    objs = render_manifests(spec, "dev")
    assert not [o for o in objs if o["kind"] == "Secret"]
    payment = _by(objs, "Deployment", "payment")["spec"]["template"]["spec"]["containers"][0]
    ref = next(e for e in payment["env"] if e["name"] == "PAYMENT_API_KEY")["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "payment-secrets", "key": "PAYMENT_API_KEY"}


def test_progressive_env_routes_by_weight_to_stable_and_canary(spec) -> None:
    prod = render_manifests(spec, "prod")
    route = _by(prod, "HTTPRoute", "user")
    backends = route["spec"]["rules"][0]["backendRefs"]
    assert [(b["name"], b["weight"]) for b in backends] == [("user-stable", 100), ("user-canary", 0)]
    assert _by(prod, "Service", "user-canary")["spec"]["selector"]["juanie.dev/track"] == "canary"
    dev = render_manifests(spec, "dev")
    assert [b["name"] for b in _by(dev, "HTTPRoute", "user")["spec"]["rules"][0]["backendRefs"]] == ["user"]
    assert not [o for o in dev if o["metadata"]["name"] == "user-canary"]


def test_pdb_and_hpa_follow_replicas_and_autoscaling(spec) -> None:
    dev = render_manifests(spec, "dev")
    assert not [o for o in dev if o["kind"] in ("PodDisruptionBudget", "HorizontalPodAutoscaler")]
    prod = render_manifests(spec, "prod")
    hpa = _by(prod, "HorizontalPodAutoscaler", "order")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    assert {o["metadata"]["name"] for o in prod if o["kind"] == "PodDisruptionBudget"} == set(spec.services)
    assert not [
        o for o in prod if o["kind"] == "HorizontalPodAutoscaler" and o["metadata"]["name"] == "payment"
    ]


def test_rendering_twice_gives_identical_bytes(spec) -> None:
    first = render_tree(spec, ReleaseRef("abc1234"))
    second = render_tree(load_spec(MICROSHOP), ReleaseRef("abc1234"))
    assert first == second
    assert list(first) == sorted(first)


def test_changing_one_image_tag_changes_one_line_per_environment(spec) -> None:
    before = render_tree(spec, ReleaseRef("abc1234"))
    after = render_tree(spec, ReleaseRef("abc1234", {"order": "juanie.local/microshop/order:def5678"}))
    changed = {path for path in before if before[path] != after[path]}
    assert changed == {f"rendered/{e}/manifests.yaml" for e in spec.environments} | {
        f"overlays/{e}/kustomization.yaml" for e in spec.environments
    }
    for path in changed:
        delta = [
            line
            for line in difflib.unified_diff(
                before[path].splitlines(), after[path].splitlines(), n=0, lineterm=""
            )
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
        assert len(delta) == 2, (path, delta)  # one line removed, one added
        assert "def5678" in delta[1]


def test_every_written_yaml_document_parses_and_json_is_sorted(spec) -> None:
    tree = render_tree(spec)
    for path, text in tree.items():
        if path.endswith(".yaml"):
            assert text.startswith("---\n")
            assert list(yaml.safe_load_all(text))
    assert tree["monitoring/grafana/microshop.json"].endswith("\n")


def test_render_subset_of_environments_and_unknown_environment(spec) -> None:
    tree = render_tree(spec, envs=["dev"])
    assert "rendered/dev/manifests.yaml" in tree and "rendered/prod/manifests.yaml" not in tree
    with pytest.raises(KeyError, match="unknown environment"):
        render_manifests(spec, "qa")


def test_alert_rules_carry_defaults_severities_and_custom_rules(spec) -> None:
    rules = yaml.safe_load(render_tree(spec)["monitoring/rules/alerts.yaml"])["groups"][0]["rules"]
    by_name = {r["alert"]: r for r in rules}
    assert by_name["HighErrorRate"]["for"] == "5m" and by_name["HighErrorRate"]["expr"].endswith("> 5")
    assert by_name["HighLatency"]["expr"].endswith("> 1.5")  # overridden in microshop
    assert by_name["HighCPU"]["for"] == "15m" and by_name["HighCPU"]["expr"].endswith("> 80")
    assert by_name["FrequentRestarts"]["expr"].endswith("> 5")
    assert by_name["PaymentProviderErrors"]["labels"]["severity"] == "P1"
    assert {r["labels"]["severity"] for r in rules} <= {"P0", "P1", "P2", "P3"}


def test_policy_passes_rendered_manifests_and_catches_each_breakage(spec) -> None:
    objs = render_manifests(spec, "prod")
    findings = lint_manifests(objs, "rendered/prod/manifests.yaml")
    assert score(findings) == 100.0
    dep = _by(objs, "Deployment", "user")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "user:latest"
    del container["readinessProbe"]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    broken = [o for o in objs if o["kind"] not in ("PodDisruptionBudget", "ResourceQuota")]
    broken = [o for o in broken if o["metadata"]["name"] != "default-deny"]
    failures = {(f.object, f.check) for f in lint_manifests(broken) if not f.ok}
    assert failures == {
        ("Deployment/user", "pinned-image"),
        ("Deployment/user", "probes"),
        ("Deployment/user", "read-only-root"),
        *{(f"Deployment/{s}", "disruption-budget") for s in spec.services},
        ("(namespace)", "default-deny"),
        ("(namespace)", "resourcequota"),
    }
    assert score(lint_manifests(broken)) < 100.0


def test_blue_green_and_custom_environment_render() -> None:
    spec = parse_spec(
        "project: {name: shop}\nservices:\n  web: {run: python -m web, port: 8000}\n"
        "environments:\n  preview:\n    strategy: {type: blue_green, auto_promote: true}\n"
    )
    objs = render_manifests(spec, "preview")
    assert {o["metadata"]["name"] for o in objs if o["kind"] == "Service"} == {
        "web",
        "web-stable",
        "web-canary",
    }
    assert objs[0] == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": objs[0]["metadata"] | {"name": "shop-preview"},
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(json_values, json_values)
def test_json_patch_diff_turns_old_into_new(old: object, new: object) -> None:
    assert apply(old, diff(old, new)) == new
