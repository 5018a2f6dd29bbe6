"""A container's `env` and `envFrom`, read into references that are resolved only when a replica starts. Pure.

Keeping references (not values) in the parsed spec is what keeps Secret values out of every file the engine
writes: they are looked up at start time and go nowhere but into the child's environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from juanie.engines.base import EngineError


@dataclass(frozen=True)
class EnvVarSpec:
    """One `env` entry: a literal value or a reference resolved at start time (secrets never stored)."""

    name: str
    value: str | None = None
    source: str = ""  # "", "configMap", "secret", "field"
    ref_name: str = ""
    ref_key: str = ""
    optional: bool = False


@dataclass(frozen=True)
class EnvFromSpec:
    source: str  # "configMap" | "secret"
    ref_name: str
    prefix: str = ""
    optional: bool = False


def parse_env(container: dict[str, Any], where: str) -> tuple[tuple[EnvVarSpec, ...], tuple[EnvFromSpec, ...]]:
    out: list[EnvVarSpec] = []
    for i, item in enumerate(container.get("env") or []):
        at = f"{where}.env[{i}]"
        if not isinstance(item, dict) or not item.get("name"):
            raise EngineError(f"{at}: expected an object with a 'name', got {item!r}")
        name = str(item["name"])
        if "valueFrom" not in item:
            out.append(EnvVarSpec(name=name, value="" if item.get("value") is None else str(item["value"])))
            continue
        vf = item["valueFrom"] or {}
        for key, source in (("configMapKeyRef", "configMap"), ("secretKeyRef", "secret")):
            if key in vf:
                ref = vf[key] or {}
                if not ref.get("name") or not ref.get("key"):
                    raise EngineError(f"{at}.valueFrom.{key}: expected 'name' and 'key', got {ref!r}")
                out.append(
                    EnvVarSpec(
                        name=name,
                        source=source,
                        ref_name=str(ref["name"]),
                        ref_key=str(ref["key"]),
                        optional=bool(ref.get("optional", False)),
                    )
                )
                break
        else:
            if "fieldRef" in vf:
                out.append(EnvVarSpec(name=name, source="field", ref_key=str((vf["fieldRef"] or {}).get("fieldPath"))))
            else:
                raise EngineError(
                    f"{at}.valueFrom: the local engine resolves configMapKeyRef, secretKeyRef and fieldRef, "
                    f"got {sorted(vf)}"
                )
    env_from: list[EnvFromSpec] = []
    for i, item in enumerate(container.get("envFrom") or []):
        at = f"{where}.envFrom[{i}]"
        for key, source in (("configMapRef", "configMap"), ("secretRef", "secret")):
            if isinstance(item, dict) and key in item:
                ref = item[key] or {}
                if not ref.get("name"):
                    raise EngineError(f"{at}.{key}: expected a 'name'")
                env_from.append(
                    EnvFromSpec(
                        source=source,
                        ref_name=str(ref["name"]),
                        prefix=str(item.get("prefix") or ""),
                        optional=bool(ref.get("optional", False)),
                    )
                )
                break
        else:
            raise EngineError(f"{at}: expected configMapRef or secretRef, got {item!r}")
    return tuple(out), tuple(env_from)
