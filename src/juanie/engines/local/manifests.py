"""Rendered manifests -> what the local engine should run: workloads, routes, autoscalers, and what it cannot
enforce.

Pure: a list of Kubernetes objects in, a `DesiredEnv` out. Every object is either turned into something the
engine
runs or listed in `not_enforced`, never dropped in silence. Errors name the object and the field
(`Deployment/api: spec.template.spec.containers[0].image: ...`) and say what was expected.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from juanie.engines.base import EngineError, Manifest
from juanie.engines.local.envspec import EnvFromSpec, EnvVarSpec, parse_env
from juanie.engines.local.probes import ProbeSpec, parse_probe
from juanie.sandbox import Limits
from juanie.spec.fields import cpu_millicores, memory_bytes

TRACK_ANNOTATION = "juanie.dev/track"
NAME_LABEL = "app.kubernetes.io/name"
VERSION_LABEL = "app.kubernetes.io/version"

# Kinds that only describe things the local engine realises another way or that need nothing locally.
_INFORMATIONAL = {"Namespace", "ServiceAccount", "ConfigMap", "Secret", "Service", "HTTPRoute"}
_NOT_ENFORCED_REASON = {
    "NetworkPolicy": "network isolation is not enforced locally",
    "PodDisruptionBudget": "disruption budgets are not enforced locally",
    "ResourceQuota": "quotas are not enforced locally",
    "LimitRange": "resource limits are not enforced locally",
}


@dataclass(frozen=True)
class PortSpec:
    name: str
    container_port: int


@dataclass(frozen=True)
class WorkloadSpec:
    """One Deployment as the local engine runs it; `template_hash` changes when replicas must be replaced."""

    name: str
    service: str
    track: str
    version: str
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[EnvVarSpec, ...]
    env_from: tuple[EnvFromSpec, ...]
    ports: tuple[PortSpec, ...]
    replicas: int
    max_surge: int
    max_unavailable: int
    grace_seconds: float
    progress_deadline: float
    readiness: ProbeSpec | None
    liveness: ProbeSpec | None
    cpu_request: float  # cores; 0 when the manifest asks for none
    labels: dict[str, str]
    template_hash: str
    paused: bool = False
    limits: Limits = field(default_factory=Limits)
    """`resources.limits` (cpu cores, memory bytes), enforced by the sandbox; see `sandbox/limits.py`."""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    selector: dict[str, str]


@dataclass(frozen=True)
class RouteSpec:
    """An HTTPRoute reduced to what the gateway needs: which app, weights per track, hostnames, timeout."""

    name: str
    weights: dict[str, int]
    hostnames: tuple[str, ...] = ()
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class HpaSpec:
    name: str
    target: str
    min_replicas: int
    max_replicas: int
    target_cpu_percent: int
    scale_down_window: float


@dataclass
class DesiredEnv:
    """Everything an environment's manifests ask the local engine for."""

    workloads: dict[str, WorkloadSpec] = field(default_factory=dict)
    services: dict[str, ServiceSpec] = field(default_factory=dict)
    routes: dict[str, RouteSpec] = field(default_factory=dict)
    hpas: dict[str, HpaSpec] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    secret_names: tuple[str, ...] = ()
    not_enforced: list[str] = field(default_factory=list)


def _where(m: Manifest) -> str:
    return f"{m.get('kind', '?')}/{(m.get('metadata') or {}).get('name', '?')}"


def _int_or_percent(value: Any, total: int, *, round_up: bool, where: str) -> int:
    """Resolve `maxSurge`/`maxUnavailable` (`1` or `"25%"`) as Kubernetes does.

    A percentage of the surge rounds up and one of the unavailability rounds down.
    """
    if value is None:
        value = "25%"
    if isinstance(value, bool):
        raise EngineError(f"{where}: expected an integer or a percentage like '25%', got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise EngineError(f"{where}: expected a value >= 0, got {value}")
        return value
    text = str(value).strip()
    if text.endswith("%") and text[:-1].isdigit():
        raw = total * int(text[:-1]) / 100
        return math.ceil(raw) if round_up else math.floor(raw)
    if text.isdigit():
        return int(text)
    raise EngineError(f"{where}: expected an integer or a percentage like '25%', got {value!r}")


def parse_cpu(value: Any) -> float:
    """Kubernetes CPU quantity (`"250m"`, `"1"`, `0.5`) -> cores; unparsable -> 0 (no request)."""
    if value is None:
        return 0.0
    text = str(value).strip()
    try:
        return int(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        return 0.0


def parse_limits(value: Any, where: str) -> Limits:
    """`resources.limits` -> Limits; a quantity that is not one is an error, never a silently absent limit."""
    if value is None:
        return Limits()
    if not isinstance(value, dict):
        raise EngineError(f"{where}: expected a mapping with cpu and/or memory, got {value!r}")
    unknown = sorted(set(value) - {"cpu", "memory"})
    if unknown:
        raise EngineError(f"{where}: the local engine enforces cpu and memory limits, not {', '.join(unknown)}")
    cpu = memory = None
    try:
        if value.get("cpu") is not None:
            cpu = cpu_millicores(str(value["cpu"]).strip()) / 1000
        if value.get("memory") is not None:
            memory = memory_bytes(str(value["memory"]).strip())
    except ValueError as exc:
        raise EngineError(f"{where}: {exc} (expected e.g. cpu: 500m, memory: 256Mi)") from None
    return Limits(cpu=cpu, memory=memory)


def _strings(value: Any, at: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise EngineError(f"{at}: expected a list of strings, got {value!r}")
    return tuple(str(v) for v in value)


def template_hash(template: Any, config: dict[str, dict[str, str]]) -> str:
    """A short digest of the pod template plus the ConfigMap data it reads, so a config change rolls the
    replicas.

    Secret values are deliberately not part of it: only their names are in the template.
    """
    doc = {"template": template, "config": config}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _workload(m: Manifest, config_maps: dict[str, dict[str, str]]) -> WorkloadSpec:
    where = _where(m)
    meta = m.get("metadata") or {}
    spec = m.get("spec") or {}
    template = spec.get("template") or {}
    tmeta = template.get("metadata") or {}
    pod = template.get("spec") or {}
    containers = pod.get("containers") or []
    if not isinstance(containers, list) or not containers:
        raise EngineError(f"{where}: spec.template.spec.containers: expected at least one container")
    if len(containers) > 1:
        raise EngineError(f"{where}: the local engine runs one container per Deployment, got {len(containers)}")
    c = containers[0]
    cwhere = f"{where}: spec.template.spec.containers[0]"
    image = c.get("image")
    if not isinstance(image, str) or not image:
        raise EngineError(f"{cwhere}.image: expected an image name")
    command = _strings(c.get("command"), f"{cwhere}.command")
    args = _strings(c.get("args"), f"{cwhere}.args")
    if not command and not args:
        raise EngineError(f"{cwhere}: the local engine needs 'command' (and optionally 'args') to start a process")
    labels = {**(meta.get("labels") or {}), **(tmeta.get("labels") or {})}
    annotations = {**(meta.get("annotations") or {}), **(tmeta.get("annotations") or {})}
    replicas = spec.get("replicas", 1)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise EngineError(f"{where}: spec.replicas: expected an integer >= 0, got {replicas!r}")
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        surge, unavailable = 0, max(replicas, 1)
    else:
        ru = strategy.get("rollingUpdate") or {}
        surge = _int_or_percent(ru.get("maxSurge"), replicas, round_up=True, where=f"{where}: maxSurge")
        unavailable = _int_or_percent(
            ru.get("maxUnavailable"), replicas, round_up=False, where=f"{where}: maxUnavailable"
        )
        if surge == 0 and unavailable == 0:
            unavailable = 1  # Kubernetes rejects 0/0; the nearest meaningful rollout replaces one at a time
    ports = tuple(
        PortSpec(name=str(p.get("name") or ""), container_port=int(p.get("containerPort") or 0))
        for p in (c.get("ports") or [])
        if isinstance(p, dict)
    )
    env, env_from = parse_env(c, cwhere)
    used = {e.ref_name for e in env if e.source == "configMap"} | {
        e.ref_name for e in env_from if e.source == "configMap"
    }
    readiness = parse_probe(c.get("readinessProbe"), f"{cwhere}.readinessProbe")
    liveness = parse_probe(c.get("livenessProbe"), f"{cwhere}.livenessProbe")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    deadline = spec.get("progressDeadlineSeconds", 600)
    name = str(meta.get("name"))
    return WorkloadSpec(
        name=name,
        service=str(labels.get(NAME_LABEL) or name),
        track=str(annotations.get(TRACK_ANNOTATION) or labels.get(TRACK_ANNOTATION) or "stable"),
        version=str(labels.get(VERSION_LABEL) or image.rpartition(":")[2] or "unknown"),
        image=image,
        command=command,
        args=args,
        env=env,
        env_from=env_from,
        ports=ports,
        replicas=replicas,
        max_surge=surge,
        max_unavailable=unavailable,
        grace_seconds=float(grace),
        progress_deadline=float(deadline),
        readiness=readiness,
        liveness=liveness,
        cpu_request=parse_cpu(((c.get("resources") or {}).get("requests") or {}).get("cpu")),
        limits=parse_limits((c.get("resources") or {}).get("limits"), f"{cwhere}.resources.limits"),
        labels={str(k): str(v) for k, v in labels.items()},
        template_hash=template_hash(template, {n: config_maps.get(n, {}) for n in sorted(used)}),
        paused=bool(spec.get("paused", False)),
    )


def _route(m: Manifest, services: dict[str, ServiceSpec]) -> RouteSpec:
    where = _where(m)
    spec = m.get("spec") or {}
    weights: dict[str, int] = {}
    timeout = 30.0
    for rule in spec.get("rules") or []:
        t = ((rule or {}).get("timeouts") or {}).get("request")
        if isinstance(t, str) and t.endswith("s") and t[:-1].replace(".", "", 1).isdigit():
            timeout = float(t[:-1])
        for ref in (rule or {}).get("backendRefs") or []:
            name = str((ref or {}).get("name") or "")
            svc = services.get(name)
            track = (svc.selector.get(TRACK_ANNOTATION) if svc else None) or (
                name.rsplit("-", 1)[1] if name.rsplit("-", 1)[-1] in ("stable", "canary", "preview") else "stable"
            )
            weight = (ref or {}).get("weight", 1)
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
                raise EngineError(f"{where}: backendRefs {name!r}: expected an integer weight >= 0, got {weight!r}")
            weights[track] = weights.get(track, 0) + weight
    return RouteSpec(
        name=str((m.get("metadata") or {}).get("name")),
        weights=weights,
        hostnames=tuple(str(h).lower() for h in spec.get("hostnames") or []),
        timeout_seconds=timeout,
    )


def _hpa(m: Manifest) -> HpaSpec:
    where = _where(m)
    spec = m.get("spec") or {}
    target = (spec.get("scaleTargetRef") or {}).get("name")
    if not target:
        raise EngineError(f"{where}: spec.scaleTargetRef.name: expected the Deployment to scale")
    lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas")
    if not isinstance(hi, int) or not isinstance(lo, int) or not 1 <= lo <= hi:
        raise EngineError(f"{where}: expected 1 <= minReplicas <= maxReplicas, got min={lo!r} max={hi!r}")
    cpu = 80
    for metric in spec.get("metrics") or []:
        res = (metric or {}).get("resource") or {}
        if res.get("name") == "cpu":
            cpu = int((res.get("target") or {}).get("averageUtilization") or cpu)
    if "targetCPUUtilizationPercentage" in spec:
        cpu = int(spec["targetCPUUtilizationPercentage"])
    window = ((spec.get("behavior") or {}).get("scaleDown") or {}).get("stabilizationWindowSeconds", 300)
    return HpaSpec(str((m.get("metadata") or {}).get("name")), str(target), lo, hi, max(cpu, 1), float(window))


def parse_manifests(manifests: list[Manifest]) -> DesiredEnv:
    """Read an environment's manifests; raise EngineError for what cannot run, list what is not enforced."""
    out = DesiredEnv()
    secrets: list[str] = []
    seen: set[str] = set()
    for i, m in enumerate(manifests):
        if not isinstance(m, dict) or not m.get("kind") or not (m.get("metadata") or {}).get("name"):
            raise EngineError(f"manifest #{i}: expected a Kubernetes object with 'kind' and 'metadata.name'")
        key = _where(m)
        if key in seen:
            raise EngineError(f"{key}: appears twice in the manifests; names must be unique per kind")
        seen.add(key)
        kind, name = m["kind"], str(m["metadata"]["name"])
        if kind == "ConfigMap":
            out.config_maps[name] = {str(k): str(v) for k, v in (m.get("data") or {}).items()}
        elif kind == "Secret":
            secrets.append(name)
        elif kind == "Service":
            out.services[name] = ServiceSpec(
                name, {str(k): str(v) for k, v in ((m.get("spec") or {}).get("selector") or {}).items()}
            )
    out.secret_names = tuple(secrets)
    for m in manifests:
        kind = m["kind"]
        if kind == "Deployment":
            w = _workload(m, out.config_maps)
            out.workloads[w.name] = w
        elif kind == "HTTPRoute":
            r = _route(m, out.services)
            out.routes[r.name] = r
        elif kind == "HorizontalPodAutoscaler":
            h = _hpa(m)
            out.hpas[h.target] = h
        elif kind in _NOT_ENFORCED_REASON:
            out.not_enforced.append(f"{_where(m)}: not enforced locally ({_NOT_ENFORCED_REASON[kind]})")
        elif kind not in _INFORMATIONAL:
            out.not_enforced.append(f"{_where(m)}: not enforced locally (the local engine does not run {kind})")
    for target in out.hpas:
        if target not in out.workloads:
            raise EngineError(f"HorizontalPodAutoscaler/{out.hpas[target].name}: no Deployment named {target!r}")
    return out


def routed_services(desired: DesiredEnv) -> dict[str, list[WorkloadSpec]]:
    """App name -> its workloads, for every app some Service selects; these become gateway routes."""
    by_app: dict[str, list[WorkloadSpec]] = {}
    for w in desired.workloads.values():
        selected = any(
            s.selector
            and all(w.labels.get(k) == v or (k == TRACK_ANNOTATION and v == w.track) for k, v in s.selector.items())
            for s in desired.services.values()
        )
        if selected:
            by_app.setdefault(w.service, []).append(w)
    return by_app
