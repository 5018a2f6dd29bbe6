"""Resource limits from a manifest's `resources.limits`, enforced the strongest way this host allows.

In order of preference, as a kubelet would: a cgroup v2 child with `memory.max` and `cpu.max`; the cgroup v1
`memory` and `cpu` hierarchies; and where no cgroup is writable, `RLIMIT_AS` for memory (through `prlimit`) while
the CPU limit is reported as not enforced. Whatever is chosen is said in words (`LimitPlan.describe`), and the
engine shows it in the workload's status: a limit is never silently dropped.

A process joins its cgroups before anything else runs: the command is prefixed with a tiny `sh` that writes its own
pid into each `cgroup.procs` and then execs bubblewrap, so every descendant is born inside.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Mechanism = Literal["cgroup v2", "cgroup v1", "rlimit", "none"]
CFS_PERIOD_US = 100_000
_JOIN = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'


@dataclass(frozen=True)
class Limits:
    """`resources.limits` of one container: cores (0.5 for `500m`) and bytes; None where the manifest sets none."""

    cpu: float | None = None
    memory: int | None = None

    @property
    def empty(self) -> bool:
        return self.cpu is None and self.memory is None


@dataclass(frozen=True)
class LimitPlan:
    """How `limits` will be enforced for one process: the cgroups to create, or an rlimit."""

    limits: Limits
    mechanism: Mechanism
    cgroups: dict[str, dict[str, str]] = field(default_factory=dict)
    """cgroup directory -> {control file: value}; the process joins each directory."""
    rlimit_as: int | None = None

    def describe(self) -> str:
        """One line for the status: what is enforced, how, and what is not."""
        if self.limits.empty:
            return "no resource limits set"
        parts = []
        if self.limits.memory is not None:
            how = {"rlimit": "RLIMIT_AS", "none": "not enforced"}.get(self.mechanism, self.mechanism)
            parts.append(f"memory {_mib(self.limits.memory)} ({how})")
        if self.limits.cpu is not None:
            how = self.mechanism if self.mechanism.startswith("cgroup") else "not enforced: no writable cgroup"
            parts.append(f"cpu {self.limits.cpu:g} cores ({how})")
        return "limits: " + ", ".join(parts)

    def launcher(self) -> list[str]:
        """What to put before the command so that it enters its cgroups before it starts (root only); the
        launcher execs the command, so the process keeps the command's own cmdline."""
        if not self.cgroups:
            return []
        procs = [str(Path(d) / "cgroup.procs") for d in self.cgroups]
        return ["/bin/sh", "-c", _JOIN, "juanie-cgroup", *procs, "--"]

    def prlimit(self, command: list[str]) -> list[str]:
        """Prefix the command inside the jail with `prlimit` when memory is capped by an rlimit."""
        if self.rlimit_as is None:
            return command
        return ["prlimit", f"--as={self.rlimit_as}", "--", *command]


def _mib(n: int) -> str:
    return f"{n / 1024**2:g}Mi"


@dataclass(frozen=True)
class CgroupHost:
    """Where this host lets Juanie create cgroups; found once per server (`detect`)."""

    mechanism: Mechanism
    v2_root: Path | None = None
    v1_memory: Path | None = None
    v1_cpu: Path | None = None


def detect(sys_fs_cgroup: Path = Path("/sys/fs/cgroup")) -> CgroupHost:
    """The best cgroup interface that is writable here and has the memory and cpu controllers."""
    if os.geteuid() != 0:
        return CgroupHost("rlimit")
    for v2 in (sys_fs_cgroup, sys_fs_cgroup / "unified"):
        controllers = _read(v2 / "cgroup.controllers").split()
        if {"memory", "cpu"} <= set(controllers) and os.access(v2, os.W_OK):
            return CgroupHost("cgroup v2", v2_root=v2)
    memory = sys_fs_cgroup / "memory"
    cpu = next((p for p in (sys_fs_cgroup / "cpu", sys_fs_cgroup / "cpu,cpuacct") if (p / "cpu.cfs_quota_us").exists()),
               None)  # fmt: skip
    if (memory / "memory.limit_in_bytes").exists() and cpu is not None and os.access(memory, os.W_OK):
        return CgroupHost("cgroup v1", v1_memory=memory, v1_cpu=cpu)
    return CgroupHost("rlimit")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def plan(limits: Limits, host: CgroupHost, name: str) -> LimitPlan:
    """Which cgroups (named `juanie/<name>`) or rlimit enforce `limits` on this host. Pure given `host`."""
    if limits.empty:
        return LimitPlan(limits, "none")
    quota = str(max(1000, round(limits.cpu * CFS_PERIOD_US))) if limits.cpu is not None else None
    if host.mechanism == "cgroup v2" and host.v2_root is not None:
        files = {}
        if limits.memory is not None:
            files.update({"memory.max": str(limits.memory), "memory.swap.max": "0"})
        if quota is not None:
            files["cpu.max"] = f"{quota} {CFS_PERIOD_US}"
        return LimitPlan(limits, "cgroup v2", {str(host.v2_root / "juanie" / name): files})
    if host.mechanism == "cgroup v1" and host.v1_memory is not None and host.v1_cpu is not None:
        groups: dict[str, dict[str, str]] = {}
        if limits.memory is not None:
            groups[str(host.v1_memory / "juanie" / name)] = {"memory.limit_in_bytes": str(limits.memory)}
        if quota is not None:
            groups[str(host.v1_cpu / "juanie" / name)] = {"cpu.cfs_period_us": str(CFS_PERIOD_US),
                                                          "cpu.cfs_quota_us": quota}  # fmt: skip
        return LimitPlan(limits, "cgroup v1", groups)
    return LimitPlan(limits, "rlimit" if limits.memory is not None else "none", rlimit_as=limits.memory)


def create(limit_plan: LimitPlan) -> None:
    """Make the plan's cgroups and write their limits (v2 parents get the controllers enabled first)."""
    for directory, files in limit_plan.cgroups.items():
        path = Path(directory)
        if limit_plan.mechanism == "cgroup v2":
            _enable_controllers(path)
        path.mkdir(parents=True, exist_ok=True)
        for name, value in files.items():
            with contextlib.suppress(FileNotFoundError):  # memory.swap.max is absent without swap accounting
                (path / name).write_text(value)


def _enable_controllers(leaf: Path) -> None:
    for parent in (leaf.parent.parent, leaf.parent):
        parent.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            (parent / "cgroup.subtree_control").write_text("+memory +cpu")


def remove(limit_plan: LimitPlan) -> None:
    """Remove the plan's cgroups once their processes are gone (a cgroup with members stays)."""
    for directory in limit_plan.cgroups:
        with contextlib.suppress(OSError):
            Path(directory).rmdir()
