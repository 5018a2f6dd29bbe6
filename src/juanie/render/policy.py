"""The policy report: score rendered manifests against the rules a reviewer would check by hand.

Every check yields a result, passed or not, so the score is `passed / checked` and the failures name the file
and the object (`Deployment/order`). Pure: manifests in, results out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

Manifest = dict[str, Any]
REQUIRED_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/version")


@dataclass(frozen=True)
class Finding:
    """One check on one object: `ok` or a message saying what is missing."""

    file: str
    object: str
    check: str
    ok: bool
    message: str = ""

    def __str__(self) -> str:
        return f"{self.file}: {self.object}: {self.check}: {self.message or 'ok'}"


def _containers(obj: Manifest) -> list[dict[str, Any]]:
    pod = obj.get("spec", {}).get("template", {}).get("spec", {})
    return list(pod.get("containers") or []) + list(pod.get("initContainers") or [])


def _pod_security(obj: Manifest) -> dict[str, Any]:
    return obj.get("spec", {}).get("template", {}).get("spec", {}).get("securityContext") or {}


CheckFn = Callable[[Manifest, dict[str, Any]], str]
"""A container check returns "" when it passes, else what is wrong."""


def _probes(_: Manifest, c: dict[str, Any]) -> str:
    missing = [p for p in ("readinessProbe", "livenessProbe") if not c.get(p)]
    return f"container {c.get('name')} has no {' and no '.join(missing)}" if missing else ""


def _limits(_: Manifest, c: dict[str, Any]) -> str:
    res = c.get("resources") or {}
    missing = [
        f"{kind}.{r}"
        for kind in ("requests", "limits")
        for r in ("cpu", "memory")
        if not (res.get(kind) or {}).get(r)
    ]
    return f"container {c.get('name')} sets no {', '.join(missing)}" if missing else ""


def _image(_: Manifest, c: dict[str, Any]) -> str:
    image = str(c.get("image", ""))
    name = image.split("@")[0]
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
    if "@" in image:
        return ""
    if not tag or tag == "latest":
        return f'image "{image}" is not pinned (use a version tag or digest, never :latest)'
    return ""


def _non_root(obj: Manifest, c: dict[str, Any]) -> str:
    ctx = c.get("securityContext") or {}
    if ctx.get("runAsNonRoot") is True or (
        _pod_security(obj).get("runAsNonRoot") is True and "runAsNonRoot" not in ctx
    ):
        return ""
    return f"container {c.get('name')} may run as root (set runAsNonRoot: true)"


def _read_only(_: Manifest, c: dict[str, Any]) -> str:
    ok = (c.get("securityContext") or {}).get("readOnlyRootFilesystem") is True
    return "" if ok else f"container {c.get('name')} has a writable root filesystem"


def _drop_all(_: Manifest, c: dict[str, Any]) -> str:
    drop = ((c.get("securityContext") or {}).get("capabilities") or {}).get("drop") or []
    return "" if "ALL" in drop else f"container {c.get('name')} does not drop ALL capabilities"


def _no_escalation(_: Manifest, c: dict[str, Any]) -> str:
    ok = (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is False
    return "" if ok else f"container {c.get('name')} allows privilege escalation"


CONTAINER_CHECKS: dict[str, CheckFn] = {
    "probes": _probes,
    "resources": _limits,
    "pinned-image": _image,
    "non-root": _non_root,
    "read-only-root": _read_only,
    "drop-all-capabilities": _drop_all,
    "no-privilege-escalation": _no_escalation,
}


def _ref(obj: Manifest) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def _selects(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    wanted = selector.get("matchLabels") or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def _workload_checks(file: str, obj: Manifest, objects: list[Manifest]) -> Iterator[Finding]:
    ref = _ref(obj)
    for container in _containers(obj):
        for check, fn in CONTAINER_CHECKS.items():
            problem = fn(obj, container)
            yield Finding(file, ref, check, not problem, problem)
    labels = (obj.get("metadata") or {}).get("labels") or {}
    missing = [k for k in REQUIRED_LABELS if k not in labels]
    yield Finding(file, ref, "labels", not missing, f"missing labels {', '.join(missing)}" if missing else "")
    if int(obj.get("spec", {}).get("replicas", 1) or 1) > 1:
        pod_labels = obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}
        covered = any(
            o.get("kind") == "PodDisruptionBudget"
            and _selects(o.get("spec", {}).get("selector") or {}, pod_labels)
            for o in objects
        )
        yield Finding(
            file,
            ref,
            "disruption-budget",
            covered,
            "" if covered else "replicas > 1 but no PodDisruptionBudget",
        )


def _namespace_checks(file: str, objects: list[Manifest]) -> Iterator[Finding]:
    kinds = {o.get("kind") for o in objects}
    deny = any(
        o.get("kind") == "NetworkPolicy"
        and (o.get("spec") or {}).get("podSelector") == {}
        and {"Ingress", "Egress"} <= set((o.get("spec") or {}).get("policyTypes") or [])
        and not (o.get("spec") or {}).get("ingress")
        and not (o.get("spec") or {}).get("egress")
        for o in objects
    )
    yield Finding(file, "(namespace)", "default-deny", deny, "" if deny else "no default-deny NetworkPolicy")
    for kind in ("ResourceQuota", "LimitRange"):
        ok = kind in kinds
        yield Finding(file, "(namespace)", kind.lower(), ok, "" if ok else f"no {kind}")


WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})


def lint_manifests(objects: list[Manifest], file: str = "manifests.yaml") -> list[Finding]:
    """Run every check on one environment's objects; returns passes and failures."""
    findings: list[Finding] = []
    for obj in objects:
        if isinstance(obj, dict) and obj.get("kind") in WORKLOADS:
            findings.extend(_workload_checks(file, obj, objects))
    findings.extend(_namespace_checks(file, objects))
    return findings


def lint_tree(tree: dict[str, str]) -> list[Finding]:
    """Lint every `rendered/<env>/manifests.yaml` of a rendered tree."""
    findings: list[Finding] = []
    for path, text in sorted(tree.items()):
        if path.startswith("rendered/") and path.endswith("/manifests.yaml"):
            objects = [o for o in yaml.safe_load_all(text) if isinstance(o, dict)]
            findings.extend(lint_manifests(objects, path))
    return findings


def score(findings: list[Finding]) -> float:
    """Percent of checks passed (100.0 when nothing was checked)."""
    if not findings:
        return 100.0
    return round(100.0 * sum(f.ok for f in findings) / len(findings), 1)
