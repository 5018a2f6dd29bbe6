"""The manifests a rollout applies at each step — pure transformations of rendered manifests.

The GitOps repository holds the *desired* end state (every service at the new release). While a canary or a
blue-green switch is in flight, the engine runs a mixture: the stable release's objects, plus a second workload
per routed service carrying the new release on the `canary` track, with the route's weights set by the step.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from juanie.engines.base import Manifest

TRACK = "juanie.dev/track"
CANARY = "canary"


def _name(obj: Manifest) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def routed_services(manifests: Iterable[Manifest]) -> set[str]:
    """Services that have a canary Service, i.e. that the strategy may split traffic for."""
    names = {_name(o) for o in manifests if o.get("kind") == "Service"}
    return {n.removesuffix("-canary") for n in names if n.endswith("-canary")}


def _as_canary(deployment: Manifest) -> Manifest:
    obj = copy.deepcopy(deployment)
    meta = obj.setdefault("metadata", {})
    meta["name"] = f"{_name(deployment)}-canary"
    meta.setdefault("labels", {})[TRACK] = CANARY
    meta.setdefault("annotations", {})[TRACK] = CANARY
    spec = obj.setdefault("spec", {})
    spec.setdefault("selector", {}).setdefault("matchLabels", {})[TRACK] = CANARY
    template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
    template_meta.setdefault("labels", {})[TRACK] = CANARY
    return obj


def with_weights(manifests: Iterable[Manifest], weights: dict[str, int]) -> list[Manifest]:
    """Set every HTTPRoute's stable/canary backend weights (`{"stable": 90, "canary": 10}`)."""
    out = []
    for obj in manifests:
        if obj.get("kind") == "HTTPRoute":
            obj = copy.deepcopy(obj)
            for rule in obj.get("spec", {}).get("rules", []):
                for ref in rule.get("backendRefs", []):
                    track = str(ref.get("name", "")).rsplit("-", 1)[-1]
                    if track in weights:
                        ref["weight"] = int(weights[track])
        out.append(obj)
    return out


def mixed(stable: list[Manifest], new: list[Manifest], weights: dict[str, int],
          canary_replicas: int | None = None) -> list[Manifest]:
    """Stable's objects plus the new release as a canary workload per routed service, routed by `weights`."""
    routed = routed_services(new)
    canaries = []
    for obj in new:
        if obj.get("kind") == "Deployment" and _name(obj) in routed:
            canary = _as_canary(obj)
            if canary_replicas is not None:
                canary["spec"]["replicas"] = canary_replicas
            canaries.append(canary)
    return with_weights([*stable, *canaries], weights)


def version_of(manifests: Iterable[Manifest]) -> str:
    for obj in manifests:
        if obj.get("kind") == "Deployment":
            labels = obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
            if labels.get("app.kubernetes.io/version"):
                return str(labels["app.kubernetes.io/version"])
    return ""
