"""Adoption: after a restart (or a crash) of the server, take over the replicas that kept running.

A recorded replica is adopted only when its pid, start time and command line (and, where readable, its
JUANIE_INSTANCE variable) still match: a pid alone may belong to an unrelated process by now. Adopted replicas keep
their readiness, so the gateway's table and the traffic stay exactly as they were. A replica that is gone is
reported and restarted by the next supervision step.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from juanie.engines.base import EngineError, EnvRef, Manifest
from juanie.engines.local import procs
from juanie.engines.local.launch import InstanceIdentity, resolve_env, resolve_image
from juanie.engines.local.manifests import DesiredEnv, WorkloadSpec, parse_manifests
from juanie.engines.local.probes import ProbeState
from juanie.engines.local.runtime import EnvRuntime, Instance
from juanie.engines.local.state import EnvRecord, InstanceRecord, from_json, load_applied

log = logging.getLogger("juanie.engines.local")


def load_env(state_path: Path) -> tuple[EnvRecord, list[Manifest], DesiredEnv] | None:
    """An environment's record and applied manifests from disk; None (and a logged reason) when unusable."""
    ns = state_path.parent.name
    try:
        record = from_json(state_path.read_text())
    except (OSError, ValueError, TypeError) as e:
        log.error("cannot adopt environment %s: %s is unreadable (%s)", ns, state_path, e)
        return None
    applied = load_applied(state_path.parent / "applied.json")
    if applied is None:
        log.error("cannot adopt environment %s: applied.json is missing or unreadable", ns)
        return None
    try:
        desired = parse_manifests(applied["manifests"])
    except EngineError as e:
        log.error("cannot adopt environment %s: %s", ns, e)
        return None
    return record, applied["manifests"], desired


def _spec_for(desired: DesiredEnv, rec: InstanceRecord) -> WorkloadSpec | None:
    w = desired.workloads.get(rec.workload)
    return w if w is not None and w.template_hash == rec.template_hash else None


def probe_env(rt: EnvRuntime, inst: Instance, releases_dir: Path) -> dict[str, str]:
    """An adopted replica's environment, rebuilt for exec probes (the process itself has its own)."""
    if inst.spec is None:
        return {}
    try:
        release = resolve_image(inst.spec.image, releases_dir)
        data_dir = rt.dir / inst.rec.workload / inst.rec.name
        ident = InstanceIdentity(rt.ref.project, rt.ref.env, rt.ref.ns, inst.rec.name, inst.rec.port, data_dir)
        ports = {"": inst.rec.port, **inst.rec.ports}
        config = rt.desired.config_maps
        return resolve_env(inst.spec, ident, config, rt.secrets, dict(os.environ), release, ports)
    except EngineError:
        return {}


def adopt_instances(rt: EnvRuntime, releases_dir: Path) -> list[Instance]:
    """Fill `rt.instances` from the record; return the adopted (live) ones, whose probes the caller starts."""
    live: list[Instance] = []
    for rec in rt.record.instances:
        inst = Instance(rec=rec, spec=_spec_for(rt.desired, rec))
        handle = procs.verify(rec.pid, rec.create_time, rec.cmdline, rec.name) if rec.pid else None
        rt.instances[rec.name] = inst
        if handle is not None:
            inst.handle = handle
            inst.cmdline_confirmed = True
            inst.started_mono = time.monotonic() - max(0.0, time.time() - rec.started_at)
            inst.env = probe_env(rt, inst, releases_dir)
            live.append(inst)
        else:
            rt.note_drift(f"Deployment/{rec.workload}: instance {rec.name} was not running at adoption; restarted")
            inst.rec.ready, inst.rec.pid = False, 0
            inst.rec.restarts += 1
            inst.readiness = ProbeState()
    return live


def env_ref(record: EnvRecord) -> EnvRef:
    return EnvRef(record.project, record.env, record.namespace)
