"""One supervision step for one environment: notice exits, restart with back-off, roll, scale, probe, persist.

`Supervisor.reconcile` is synchronous on purpose: it never awaits, so two callers (the loop and `apply`) can
never
interleave half-made decisions. Everything slow (probes, graceful stops, the gateway) runs in tasks that
report
back by changing an `Instance` and waking the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets as _secrets
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from juanie.engines.base import EngineError
from juanie.engines.local import hpa as hpa_rules
from juanie.engines.local import procs
from juanie.engines.local.launch import InstanceIdentity, build_argv, probe_port, resolve_env, resolve_image
from juanie.engines.local.manifests import WorkloadSpec
from juanie.engines.local.probes import ProbeSpec, ProbeState, run_probe
from juanie.engines.local.rollout import backoff_delay, plan_rollout
from juanie.engines.local.runtime import EnvRuntime, Instance
from juanie.engines.local.state import InstanceRecord, atomic_write, digest, to_json
from juanie.sandbox import Prepared, Sandbox, SandboxError

log = logging.getLogger("juanie.engines.local")

# A replica with a port but no readiness probe is ready once its port accepts connections: routing to a
# process
# that has not bound its socket yet would fail requests during every rollout.
_IMPLICIT_READINESS = ProbeSpec(kind="tcp", period=0.25, timeout=1.0, failure_threshold=3)


@dataclass(frozen=True)
class Timing:
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    backoff_reset: float = 30.0  # seconds of running after which a crash counts as the first one again
    hpa_interval: float = 2.0
    drain_timeout: float = 5.0


class Supervisor:
    def __init__(
        self,
        releases_dir: Path,
        timing: Timing,
        taken_ports: Callable[[], set[int]],
        wake: Callable[[], None],
        begin_stop: Callable[[EnvRuntime, Instance, str], None],
        sandbox: Sandbox,
    ) -> None:
        self.sandbox = sandbox
        self.releases_dir = releases_dir
        self.timing = timing
        self._taken_ports = taken_ports
        self._wake = wake
        self._begin_stop = begin_stop

    # ---- the step
    # -------------------------------------------------------------------------------------------
    def reconcile(self, rt: EnvRuntime) -> None:
        now = time.monotonic()
        self._check_state_file(rt)
        for inst in list(rt.instances.values()):
            if inst.stopping:
                continue
            if inst.handle is not None and not procs.alive(inst.handle):
                self._on_exit(rt, inst, now)
            elif inst.handle is not None and not inst.cmdline_confirmed and now - inst.started_mono > 1.0:
                # Record the command line as the kernel shows it once launchers have exec'd the real program.
                live = procs.live_cmdline(inst.handle.pid)
                if live:
                    inst.rec.cmdline = procs.mask_args(live, _secret_values(rt))
                inst.cmdline_confirmed = True
        for inst in list(rt.instances.values()):
            w = rt.desired.workloads.get(inst.rec.workload)
            if inst.stopping:
                continue
            if w is None:
                self._begin_stop(rt, inst, "its Deployment is no longer in the manifests")
            elif inst.handle is None and now >= inst.next_start and inst.rec.template_hash == w.template_hash:
                self._start(rt, w, inst)  # old-template replicas are not restarted: the rollout replaces them
        self._autoscale(rt, now)
        for w in rt.desired.workloads.values():
            if w.paused:
                continue
            live = [i for i in rt.of(w.name) if not i.stopping]
            plan = plan_rollout(
                rt.replicas(w), w.template_hash, w.max_surge, w.max_unavailable, [i.view() for i in live]
            )
            for name in plan.stop:
                self._begin_stop(rt, rt.instances[name], "rolling update / scale")
            if plan.start and now >= rt.retry_at.get(w.name, 0.0):
                for _ in range(plan.start):
                    if not self._start(rt, w, None):
                        rt.retry_at[w.name] = now + self.timing.backoff_base * 5
                        break
            if (
                not [i for i in live if i.rec.template_hash != w.template_hash]
                and all(i.view().ready for i in live if i.rec.template_hash == w.template_hash)
                and len(live) >= rt.replicas(w)
            ):
                rt.record.rollout_started.pop(w.name, None)
        if rt.collector is not None:
            with contextlib.suppress(OSError):
                rt.collector.poll(rt.log_sources())
        self.persist(rt)

    # ---- processes
    # ------------------------------------------------------------------------------------------
    def _on_exit(self, rt: EnvRuntime, inst: Instance, now: float) -> None:
        assert inst.handle is not None
        code = inst.handle.exit_code
        ran = now - inst.started_mono
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        if inst.last_error.startswith("liveness"):
            inst.last_exit = inst.last_error  # the supervisor stopped it; the probe already said why
        else:
            if code == -signal.SIGKILL or code == -1:
                rt.note_drift(
                    f"Deployment/{inst.rec.workload}: instance {inst.rec.name} {how} outside Juanie; replaced"
                )
            inst.last_exit = f"{inst.rec.name} {how}" + _stderr_tail(rt.raw_logs(inst.rec.name)[1])
        inst.last_error = inst.last_exit
        inst.handle = None
        inst.rec.ready = False
        inst.rec.pid = 0
        inst.rec.restarts += 1
        inst.readiness = ProbeState()
        inst.liveness = ProbeState()
        if inst.probe_task is not None:
            inst.probe_task.cancel()
            inst.probe_task = None
        inst.backoff_n = 1 if ran >= self.timing.backoff_reset else inst.backoff_n + 1
        delay = backoff_delay(inst.backoff_n - 1, self.timing.backoff_base, self.timing.backoff_max)
        inst.next_start = now + delay
        inst.backoff_seconds, inst.exited_at = delay, time.time()
        log.info("instance %s %s; restart in %.1fs", inst.rec.name, how, delay)

    def _start(self, rt: EnvRuntime, w: WorkloadSpec, inst: Instance | None) -> bool:
        """Start a new replica (inst None) or restart an existing one in place; False when it cannot start."""
        if inst is None:
            name = f"{w.name}-{w.template_hash[:5]}-{_secrets.token_hex(3)[:5]}"
            inst = Instance(
                rec=InstanceRecord(name=name, workload=w.name, template_hash=w.template_hash, version=w.version)
            )
        spec = w if inst.rec.template_hash == w.template_hash else (inst.spec or w)
        taken = self._taken_ports() - {inst.rec.port, *inst.rec.ports.values()}
        port = inst.rec.port if inst.rec.port and procs.port_is_free(inst.rec.port) else procs.free_port(taken)
        ports = {"": port}
        for i, p in enumerate(spec.ports):
            if i == 0:
                ports[p.name or str(p.container_port)] = port
            else:
                ports[p.name or str(p.container_port)] = procs.free_port(taken | set(ports.values()))
        data_dir = rt.dir / w.name / inst.rec.name
        ident = InstanceIdentity(rt.ref.project, rt.ref.env, rt.ref.ns, inst.rec.name, port, data_dir)
        try:
            release = self.release_dir(spec.image)
            env = resolve_env(spec, ident, rt.desired.config_maps, rt.secrets, dict(os.environ), release, ports)
            prepared = self._sandboxed(rt, spec, inst, env, release, data_dir)
            out, err = rt.raw_logs(inst.rec.name)
            handle = procs.spawn(prepared.argv, env, release, out, err, launcher=prepared.launcher)
        except (EngineError, SandboxError) as e:
            rt.errors[w.name] = str(e)
            inst.next_start = time.monotonic() + self.timing.backoff_max
            return False
        rt.errors.pop(w.name, None)
        inst.limits = prepared.limits
        inst.spec, inst.handle, inst.env = spec, handle, env
        inst.rec.pid, inst.rec.create_time = handle.pid, handle.create_time
        inst.rec.cmdline = procs.mask_args(handle.cmdline, _secret_values(rt))
        inst.rec.port, inst.rec.ports = port, {k: v for k, v in ports.items() if k}
        inst.rec.started_at = time.time()
        inst.rec.ready = False
        inst.started_mono = time.monotonic()
        inst.readiness, inst.liveness = ProbeState(), ProbeState()
        rt.instances[inst.rec.name] = inst
        self.start_probes(rt, inst)
        return True

    def release_dir(self, image: str) -> Path:
        """The real directory an image names (links followed: the jail binds real paths). A `file://` image may
        not point into Juanie's data directory, where other projects' releases and the server's keys live."""
        release = resolve_image(image, self.releases_dir)
        if image.startswith("file://") and self.sandbox.inside_hidden(release):
            raise EngineError(f"image {image!r}: a file:// image may not point into Juanie's data directory")
        return release.resolve()

    def _sandboxed(
        self, rt: EnvRuntime, spec: WorkloadSpec, inst: Instance, env: dict[str, str], release: Path, data_dir: Path
    ) -> Prepared:
        """The replica's command inside the project's jail: its release read-only (a release is immutable and may
        be promoted to prod), its own data directory writable, its limits enforced."""
        self.sandbox.own(data_dir, rt.ref.project)
        if self.sandbox.enabled:
            env["PATH"] = self.sandbox.visible_path(env.get("PATH", ""), (release,))
            env.update({"HOME": str(data_dir), "TMPDIR": "/tmp"})
            identity = self.sandbox.identity(rt.ref.project)
            if identity is not None:
                env.update({"USER": identity.name, "LOGNAME": identity.name})
        return self.sandbox.prepare(
            procs.resolve_command(build_argv(spec, env), env, release),
            project=rt.ref.project,
            cwd=release,
            writable=(data_dir,),
            readable=(release,),
            die_with_parent=False,
            limits=spec.limits,
            limit_name=f"{rt.ref.ns}.{inst.rec.name}",
        )

    def start_probes(self, rt: EnvRuntime, inst: Instance, adopted: bool = False) -> None:
        if inst.probe_task is not None:
            inst.probe_task.cancel()
        inst.probe_task = asyncio.get_running_loop().create_task(self._probe_loop(rt, inst, adopted))

    async def _probe_loop(self, rt: EnvRuntime, inst: Instance, adopted: bool) -> None:
        spec = inst.spec or rt.desired.workloads.get(inst.rec.workload)
        if spec is None:
            return
        readiness = spec.readiness or (_IMPLICIT_READINESS if spec.ports else None)
        liveness = spec.liveness
        if readiness is None and not adopted:
            inst.rec.ready = True
            self._wake()
        if readiness is None and liveness is None:
            return
        if adopted:
            # An adopted replica keeps the readiness it had: it is serving, and flapping it would drop
            # traffic.
            if readiness is not None and inst.rec.ready:
                inst.readiness = ProbeState(True, readiness.success_threshold, 0)
            t0 = time.monotonic() - max(
                readiness.initial_delay if readiness else 0, liveness.initial_delay if liveness else 0
            )
        else:
            t0 = inst.started_mono
        due = {
            "r": t0 + readiness.initial_delay if readiness else None,
            "l": t0 + liveness.initial_delay if liveness else None,
        }
        me = asyncio.current_task()
        while inst.running and not inst.stopping and inst.probe_task is me:
            nxt = min(v for v in due.values() if v is not None)
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))
            if not inst.running or inst.stopping or inst.probe_task is not me:
                return
            now = time.monotonic()
            if readiness is not None and due["r"] is not None and now >= due["r"]:
                port = probe_port(readiness.port, spec, inst.rec.ports, inst.rec.port)
                ok, why = await run_probe(readiness, port, inst.env or {}, self._cwd(inst), self._jail(rt, inst))
                before = inst.rec.ready
                inst.readiness = inst.readiness.record(readiness, ok, "" if ok else f"readiness: {why}")
                inst.rec.ready = inst.readiness.passing
                if not ok:
                    inst.last_error = f"readiness probe failed: {why}"
                elif inst.last_error.startswith("readiness"):
                    inst.last_error = ""
                if before != inst.rec.ready:
                    self._wake()
                due["r"] = time.monotonic() + readiness.period
            if liveness is not None and due["l"] is not None and now >= due["l"]:
                port = probe_port(liveness.port, spec, inst.rec.ports, inst.rec.port)
                ok, why = await run_probe(liveness, port, inst.env or {}, self._cwd(inst), self._jail(rt, inst))
                inst.liveness = inst.liveness.record(liveness, ok, why)
                if not ok and inst.liveness.failures >= liveness.failure_threshold:
                    inst.last_error = f"liveness probe failed {inst.liveness.failures} times: {why}; restarting"
                    inst.rec.ready = False
                    self._wake()
                    if inst.handle is not None:
                        await procs.stop_group(inst.handle, spec.grace_seconds)
                    self._wake()
                    return
                due["l"] = time.monotonic() + liveness.period

    def _cwd(self, inst: Instance) -> str:
        try:
            return str(self.release_dir(inst.spec.image)) if inst.spec else "/"
        except EngineError:
            return "/"

    def _jail(self, rt: EnvRuntime, inst: Instance) -> Callable[[list[str]], list[str]]:
        """An exec probe runs as the replica does: in the project's sandbox, seeing its release and data dir."""
        cwd = Path(self._cwd(inst))
        data_dir = rt.dir / inst.rec.workload / inst.rec.name

        def jail(command: list[str]) -> list[str]:
            return self.sandbox.prepare(command, project=rt.ref.project, cwd=cwd, writable=(data_dir,),
                                        readable=(cwd,) if cwd != Path("/") else ()).full  # fmt: skip

        return jail

    # ---- autoscaling
    # ----------------------------------------------------------------------------------------
    def _autoscale(self, rt: EnvRuntime, now: float) -> None:
        if not rt.desired.hpas or now - rt.hpa_last < self.timing.hpa_interval:
            return
        rt.hpa_last = now
        wall = time.time()
        for target, h in rt.desired.hpas.items():
            w = rt.desired.workloads[target]
            samples = []
            for inst in rt.of(target):
                if inst.handle is None or inst.stopping:
                    continue
                cpu = procs.cpu_seconds(inst.handle.pid)
                if inst.cpu_prev is not None and wall > inst.cpu_prev[0]:
                    inst.cpu_cores = max(0.0, (cpu - inst.cpu_prev[1]) / (wall - inst.cpu_prev[0]))
                    if inst.view().ready:
                        samples.append(hpa_rules.CpuSample(inst.cpu_cores))
                inst.cpu_prev = (wall, cpu)
            current = rt.replicas(w)
            util = hpa_rules.utilization_percent(samples, w.cpu_request)
            rec = hpa_rules.recommend(h, current, util)
            n, rt.hpa_history[target] = hpa_rules.stabilize(
                rt.hpa_history.get(target, []), now, rec, current, h.scale_down_window
            )
            if n != current:
                log.info("HPA %s: %s -> %s replicas (cpu %.0f%%)", h.name, current, n, util or 0)
            rt.record.hpa_replicas[target] = n

    # ---- persistence
    # ----------------------------------------------------------------------------------------
    def persist(self, rt: EnvRuntime) -> None:
        rt.record.instances = [i.rec for i in sorted(rt.instances.values(), key=lambda i: i.rec.name)]
        text = to_json(rt.record)
        d = digest(text)
        if d == rt.state_digest:
            return
        path = rt.dir / "state.json"
        atomic_write(path, text)
        st = path.stat()
        rt.state_digest, rt.state_stat = d, (st.st_mtime_ns, st.st_size)

    def _check_state_file(self, rt: EnvRuntime) -> None:
        """A state file changed by anyone but the supervisor is drift: report it, write the truth back."""
        path = rt.dir / "state.json"
        try:
            st = path.stat()
        except OSError:
            if rt.state_digest:
                rt.note_drift("state.json was removed outside Juanie; rewritten from the supervisor's view")
                rt.state_digest = ""
            return
        if (st.st_mtime_ns, st.st_size) == rt.state_stat:
            return
        try:
            changed = digest(path.read_text()) != rt.state_digest
        except OSError:
            changed = True
        if changed:
            rt.note_drift("state.json was edited outside Juanie; rewritten from the supervisor's view")
            rt.state_digest = ""
        rt.state_stat = (st.st_mtime_ns, st.st_size)


def _secret_values(rt: EnvRuntime) -> set[str]:
    return {v for keys in rt.secrets.values() for v in keys.values()}


def _stderr_tail(path: Path, limit: int = 200) -> str:
    """The last line the replica wrote to stderr, which usually says why it died."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 2048))
            lines = [ln for ln in f.read().decode("utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return f": {lines[-1][:limit]}" if lines else ""


def remove_instance_files(rt: EnvRuntime, inst: Instance) -> None:
    """After a replica stopped: its data dir and raw logs go (records stay, under the size limit)."""
    shutil.rmtree(rt.dir / inst.rec.workload / inst.rec.name, ignore_errors=True)
    paths = list(rt.raw_logs(inst.rec.name))
    if rt.collector is not None:
        rt.collector.forget(paths)
    for p in paths:
        p.unlink(missing_ok=True)
