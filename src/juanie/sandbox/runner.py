"""The one place that turns an untrusted command into a sandboxed one; pipeline steps and local workloads both ask it.

`JUANIE_SANDBOX` chooses: `bwrap` (the default) runs everything through bubblewrap and, as root, a per-project uid;
`off` runs commands as they are, for a trusted laptop, and says so at every start and on the settings page. When
bubblewrap cannot work on this host the sandbox does not quietly step aside: every command is refused with the
reason, until the operator fixes the host or turns the sandbox off explicitly.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from juanie.sandbox import limits as _limits
from juanie.sandbox.jail import MERGED_USR_LINKS, SYSTEM_READONLY, Identity, Jail, bwrap_argv
from juanie.sandbox.users import SandboxError, own, project_identity

log = logging.getLogger(__name__)
OFF_WARNING = (
    "JUANIE_SANDBOX=off: pipeline steps and services run unsandboxed as the server's own user and can read its "
    "keys, tokens and every project's data; use this only on a trusted single-user machine"
)
MODES = ("bwrap", "off")


class SandboxConfigError(ValueError):
    """A sandbox setting that is not one: said in one line at server start."""


@dataclass(frozen=True)
class Prepared:
    """A command ready to start: its argv, who it runs as, and how its limits are enforced."""

    argv: list[str]
    """The command as the process will show it (bubblewrap's argv when sandboxed)."""
    launcher: list[str]
    """Run `[*launcher, *argv]`: the launcher joins the cgroups and execs `argv`."""
    identity: Identity | None
    limits: _limits.LimitPlan

    @property
    def full(self) -> list[str]:
        return [*self.launcher, *self.argv]


def _toolchain() -> tuple[str, ...]:
    """The interpreter and Juanie's own code, read-only: release virtualenvs and the packager need them."""
    import juanie

    paths = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix),
             os.path.realpath(Path(juanie.__file__).parent.parent)}  # fmt: skip
    system = tuple(Path(p) for p in SYSTEM_READONLY)
    return tuple(sorted(p for p in paths if not any(Path(p).is_relative_to(s) for s in system)))


def _host_layout() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """System directories to bind and merged-/usr symlinks to recreate, as this host has them."""
    system, links = list(SYSTEM_READONLY), []
    for link in MERGED_USR_LINKS:
        if os.path.islink(link):
            links.append((link, os.readlink(link)))
        elif os.path.isdir(link):
            system.append(link)
    return tuple(system), tuple(links)


def _resolv_conf() -> str | None:
    real = os.path.realpath("/etc/resolv.conf")
    return None if real.startswith("/etc/") else real


class Sandbox:
    """Runs untrusted commands in bubblewrap; one per server, shared by the pipeline executor and the local engine."""

    def __init__(
        self,
        mode: str = "bwrap",
        *,
        hidden: tuple[Path, ...] = (),
        readable: tuple[str, ...] = (),
        bwrap: str | None = None,
    ):
        if mode not in MODES:
            raise SandboxConfigError(f"JUANIE_SANDBOX={mode!r}: expected one of {', '.join(MODES)}")
        self.mode = mode
        self.hidden = tuple(str(Path(h).resolve()) for h in hidden)
        self.readable = tuple(readable) + _toolchain()
        self.system, self.links = _host_layout()
        self.resolv_conf = _resolv_conf()
        self.bwrap = bwrap or shutil.which("bwrap") or "bwrap"
        self.as_root = os.geteuid() == 0
        self.cgroups = _limits.detect() if self.as_root else _limits.CgroupHost("rlimit")
        self._problem: str | bool | None = False  # False: not probed yet

    @classmethod
    def from_env(cls, hidden: tuple[Path, ...] = ()) -> Sandbox:
        """`JUANIE_SANDBOX` (bwrap | off) and `JUANIE_SANDBOX_READONLY_PATHS` (extra read-only paths, `:`-separated)."""
        mode = os.environ.get("JUANIE_SANDBOX", "bwrap").strip().lower() or "bwrap"
        extra = tuple(p for p in os.environ.get("JUANIE_SANDBOX_READONLY_PATHS", "").split(os.pathsep) if p)
        return cls(mode, hidden=hidden, readable=extra)

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def problem(self) -> str | None:
        """Why the sandbox cannot run commands on this host, or None when it can (probed once)."""
        if self._problem is False:
            self._problem = self._probe() if self.enabled else None
        return self._problem  # type: ignore[return-value]

    def status(self) -> dict[str, object]:
        """For the settings page and `/api/system`: what isolates projects here."""
        return {
            "mode": self.mode,
            "working": self.enabled and self.problem() is None,
            "problem": self.problem(),
            "per_project_uid": self.enabled and self.as_root,
            "limits": self.cgroups.mechanism,
            "warning": None if self.enabled else OFF_WARNING,
        }

    def _probe(self) -> str | None:
        if shutil.which(self.bwrap) is None:
            return "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
        identity = Identity("nobody", 65534, 65534) if self.as_root else None
        argv = bwrap_argv(["true"], Jail(cwd="/"), identity=identity, system=self.system, bwrap=self.bwrap)
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap does not start: {exc}"
        if result.returncode != 0:
            return f"bubblewrap cannot create namespaces here: {result.stderr.strip() or f'exit {result.returncode}'}"
        return None

    def inside_hidden(self, path: Path) -> bool:
        """Whether `path` is, or lies in, a directory untrusted code must never see (the data directory)."""
        real = Path(os.path.realpath(path))
        return any(real.is_relative_to(h) for h in self.hidden)

    def visible_path(self, path_var: str, extra: tuple[Path, ...] = ()) -> str:
        """`PATH` reduced to the directories a jail shows (with `extra` bound too): a program found outside the
        sandbox must be one it can run inside (a version manager's shim under the server's home is not)."""
        if not self.enabled:
            return path_var
        shown = [Path(p) for p in (*self.system, *self.readable, *(link for link, _ in self.links))] + list(extra)
        keep = [d for d in path_var.split(os.pathsep) if d and any(Path(d).is_relative_to(s) for s in shown)]
        return os.pathsep.join(keep)

    def identity(self, project: str) -> Identity | None:
        """The project's own uid when the server is root and the sandbox is on; None otherwise."""
        return project_identity(project) if self.enabled and self.as_root else None

    def own(self, path: Path, project: str, *, recursive: bool = False) -> None:
        """Create `path` for the project's code to write in (owned by its uid where there is one)."""
        own(path, self.identity(project), recursive=recursive)

    def prepare(
        self,
        command: list[str],
        *,
        project: str,
        cwd: Path,
        writable: tuple[Path, ...],
        readable: tuple[Path, ...] = (),
        die_with_parent: bool = True,
        limits: _limits.Limits | None = None,
        limit_name: str = "",
    ) -> Prepared:
        """The argv that runs `command` for `project` with only `writable` writable. Raises SandboxError with the
        reason when the sandbox is on but cannot work here."""
        plan = _limits.plan(limits or _limits.Limits(), self.cgroups, limit_name or project)
        if not self.enabled:
            _limits.create(plan)
            return Prepared(plan.prlimit(command), plan.launcher(), None, plan)
        problem = self.problem()
        if problem is not None:
            raise SandboxError(f"refusing to run untrusted code unsandboxed: {problem} "
                               "(or set JUANIE_SANDBOX=off on a trusted machine)")  # fmt: skip
        identity = self.identity(project)
        jail = Jail(
            cwd=str(cwd),
            writable=tuple(str(p) for p in writable),
            readable=tuple(dict.fromkeys((*self.readable, *(str(p) for p in readable)))),
            hidden=self.hidden,
            die_with_parent=die_with_parent,
            host_links=self.links,
        )
        argv = bwrap_argv(plan.prlimit(command), jail, identity=identity, system=self.system, bwrap=self.bwrap,
                          resolv_conf=self.resolv_conf)  # fmt: skip
        _limits.create(plan)
        return Prepared(argv, plan.launcher(), identity, plan)

    @staticmethod
    def release(plan: _limits.LimitPlan) -> None:
        """Remove what `prepare` created for a process that has ended (its cgroups; one with members stays)."""
        _limits.remove(plan)

    def limit_plan(self, limits: _limits.Limits, name: str) -> _limits.LimitPlan:
        """How `limits` are enforced on this host (what the status shows)."""
        return _limits.plan(limits, self.cgroups, name)

    def log_start(self) -> None:
        """One line at server start: what isolates projects, or the warning that nothing does."""
        if not self.enabled:
            log.warning(OFF_WARNING)
        elif (problem := self.problem()) is not None:
            log.error("sandbox unavailable, pipeline steps and services will be refused: %s", problem)
        else:
            who = "a uid per project" if self.as_root else "the server's uid in a user namespace"
            log.info("sandbox: bubblewrap with %s; resource limits by %s", who, self.cgroups.mechanism)
