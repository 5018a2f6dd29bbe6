"""The Kustomize view of the same manifests: `base/` shared by every environment, `overlays/<env>/` on top.

The overlay is derived, not hand-written: for each object the base shares with the environment it holds the
JSON
Patch from the base object to the environment's object, so `kubectl kustomize overlays/<env>` gives exactly
`rendered/<env>/manifests.yaml`. Images are left to Kustomize's `images:` so a new tag changes one line, and
the environment label to its `labels:` transformer (metadata and pod templates, never selectors).
"""

from __future__ import annotations

import copy
from typing import Any

from juanie.spec import Environment, ProjectSpec

from .context import ENV, NAME, EnvContext
from .jsonpatch import diff
from .manifests import context, manifests_for
from .release import ReleaseRef, image_for, split_image
from .yamlout import dump, dump_all

Manifest = dict[str, Any]
Key = tuple[str, str, str]


def _key(obj: Manifest) -> Key:
    return (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])


def _strip_namespace(obj: Manifest) -> Manifest:
    clean = copy.deepcopy(obj)
    clean["metadata"].pop("namespace", None)
    return clean


def _named_images(spec: ProjectSpec) -> dict[str, str]:
    return {name: name for name in spec.services}


def _base_objects(spec: ProjectSpec) -> dict[Key, Manifest]:
    """The project rendered for a neutral environment (one replica, size S, rolling, no env label)."""
    neutral = Environment(namespace=f"{spec.name}-base", hostname=f"{spec.name}.localhost")
    ctx = EnvContext(spec, "base", neutral, None, _named_images(spec), with_env_label=False)
    return {_key(o): _strip_namespace(o) for o in manifests_for(ctx)}


def _env_objects(spec: ProjectSpec, env: str, release: ReleaseRef | None) -> dict[Key, Manifest]:
    ctx = context(spec, env, release, images=_named_images(spec), with_env_label=False)
    return {_key(o): _strip_namespace(o) for o in manifests_for(ctx)}


def _shared_keys(spec: ProjectSpec, base: dict[Key, Manifest]) -> list[Key]:
    """Objects every environment has: only those can live in the base (an overlay cannot drop one cleanly)."""
    keys = list(base)
    for env in spec.environments:
        present = set(_env_objects(spec, env, None))
        keys = [k for k in keys if k in present]
    return keys


def _file_of(obj: Manifest) -> str:
    service = obj["metadata"].get("labels", {}).get(NAME)
    return f"{service}.yaml" if service else "common.yaml"


def render_base(spec: ProjectSpec) -> dict[str, str]:
    base = _base_objects(spec)
    files: dict[str, list[Manifest]] = {}
    for key in _shared_keys(spec, base):
        files.setdefault(_file_of(base[key]), []).append(base[key])
    names = sorted(files)
    tree = {f"base/{name}": dump_all(files[name]) for name in names}
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": names,
    }
    tree["base/kustomization.yaml"] = dump(kustomization)
    return tree


def _image_entry(name: str, image: str) -> dict[str, str]:
    repo, tag, digest = split_image(image)
    entry = {"name": name, "newName": repo}
    if tag:
        entry["newTag"] = tag
    if digest:
        entry["digest"] = digest
    return entry


def _target(key: Key) -> dict[str, str]:
    api, kind, name = key
    group, _, version = api.rpartition("/")
    target = {"group": group, "version": version, "kind": kind, "name": name}
    return target if group else {"version": version, "kind": kind, "name": name}


def render_overlay(spec: ProjectSpec, env: str, release: ReleaseRef | None) -> dict[str, str]:
    base = _base_objects(spec)
    shared = set(_shared_keys(spec, base))
    objects = _env_objects(spec, env, release)
    prefix = f"overlays/{env}"
    tree: dict[str, str] = {}
    extra = [obj for key, obj in objects.items() if key not in shared]
    patches = []
    for key, obj in objects.items():
        if key not in shared:
            continue
        ops = diff(base[key], obj)
        if ops:
            path = f"patches/{key[1].lower()}-{key[2]}.yaml"
            tree[f"{prefix}/{path}"] = dump(ops)
            patches.append({"path": path, "target": _target(key)})
    resources = ["../../base"]
    if extra:
        tree[f"{prefix}/resources.yaml"] = dump_all(extra)
        resources.append("resources.yaml")
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": spec.environments[env].namespace,
        "labels": [{"pairs": {ENV: env}, "includeSelectors": False, "includeTemplates": True}],
        "resources": resources,
        "images": [_image_entry(name, image_for(spec, release, name)) for name in spec.services],
    }
    if patches:
        kustomization["patches"] = patches
    tree[f"{prefix}/kustomization.yaml"] = dump(kustomization)
    return tree
