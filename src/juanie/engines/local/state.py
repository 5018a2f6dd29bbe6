"""The on-disk record of an environment: what was applied and which processes run it, for adoption after a
restart.

`<data_dir>/envs/<namespace>/state.json` holds instances (pid, create_time, cmdline, port, version, template
hash, ready, restarts), route weights and the applied revision; `applied.json` holds the applied manifests
with
Secret data removed. Both are written atomically (write a temp file, fsync, rename) so a crash at any line
leaves
either the old or the new file, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from juanie.engines.base import Manifest

STATE_VERSION = 1


@dataclass
class InstanceRecord:
    name: str
    workload: str
    pid: int = 0
    create_time: float = 0.0
    cmdline: list[str] = field(default_factory=list)
    port: int = 0
    ports: dict[str, int] = field(default_factory=dict)
    version: str = ""
    template_hash: str = ""
    ready: bool = False
    restarts: int = 0
    started_at: float = 0.0


@dataclass
class EnvRecord:
    project: str
    env: str
    namespace: str
    revision: str = ""
    weights: dict[str, dict[str, int]] = field(default_factory=dict)  # route -> track -> weight
    manifest_weights: dict[str, dict[str, int]] = field(default_factory=dict)  # as last applied from HTTPRoutes
    hpa_replicas: dict[str, int] = field(default_factory=dict)
    rollout_started: dict[str, float] = field(default_factory=dict)  # workload -> wall time the template began
    created: float = 0.0  # wall time of the first apply: who claimed a hostname first (0 for older records)
    instances: list[InstanceRecord] = field(default_factory=list)


def to_json(rec: EnvRecord) -> str:
    doc = {"version": STATE_VERSION, **asdict(rec)}
    return json.dumps(doc, indent=1, sort_keys=True)


def from_json(text: str) -> EnvRecord:
    """Parse a state file; raises ValueError with what is wrong (the caller reports, never crashes)."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
        raise ValueError(f"expected a state document with version {STATE_VERSION}")
    doc.pop("version")
    instances = [InstanceRecord(**i) for i in doc.pop("instances", [])]
    return EnvRecord(**doc, instances=instances)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def atomic_write(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def strip_secrets(manifests: list[Manifest]) -> list[Manifest]:
    """The manifests as stored on disk: Secret objects keep their name and keys, never their values."""
    out: list[Manifest] = []
    for m in manifests:
        if m.get("kind") == "Secret":
            keys = sorted({*(m.get("data") or {}), *(m.get("stringData") or {})})
            m = {k: v for k, v in m.items() if k not in ("data", "stringData")}
            m["keys"] = keys
        out.append(m)
    return out


def secret_data(manifests: list[Manifest]) -> dict[str, dict[str, str]]:
    """Secret objects present in the manifests -> name -> key -> decoded value (kept in memory only)."""
    import base64

    out: dict[str, dict[str, str]] = {}
    for m in manifests:
        if m.get("kind") != "Secret":
            continue
        values: dict[str, str] = {}
        for k, v in (m.get("data") or {}).items():
            with contextlib.suppress(ValueError):
                values[str(k)] = base64.b64decode(str(v)).decode()
        for k, v in (m.get("stringData") or {}).items():
            values[str(k)] = str(v)
        out[str((m.get("metadata") or {}).get("name"))] = values
    return out


def load_applied(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("manifests"), list) else None
