"""What the crash harness looks at, apart from the server: the processes a data directory owns, the event log as the
API pages it, the rules an event log must keep across a crash, and the summary a run prints.

Processes are found from the outside (psutil), never from what the server says, so that the two can be compared:
an application replica carries `DATA_DIR` under `<data>/engine/envs/` and `JUANIE_INSTANCE`; a pipeline step carries
`JUANIE_RUN_ID` and `JUANIE_WORKSPACE` under `<data>/workspaces/`; the gateway is `juanie.engines.local.gateway` with
`<data>/gateway` as its state directory. Zombies are dead and are not counted.
"""

from __future__ import annotations

import sqlite3
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.server_support import Server

RUN_FINAL = ("succeeded", "failed", "cancelled")
DEPLOYMENT_FINAL = ("success", "rolled_back", "cancelled")
_RUN_STATES = ("queued", "running", *RUN_FINAL)
_DEPLOYMENT_STATES = ("pending", "running", "failed", *DEPLOYMENT_FINAL)


@dataclass(frozen=True)
class Replica:
    pid: int
    namespace: str
    instance: str


@dataclass
class Scan:
    """One pass over the process table: every process that belongs to a data directory, by kind."""

    replicas: dict[int, Replica] = field(default_factory=dict)
    steps: dict[int, str] = field(default_factory=dict)  # pid -> pipeline run id
    gateways: set[int] = field(default_factory=set)

    def pids_of(self, namespace: str) -> set[int]:
        return {p for p, r in self.replicas.items() if r.namespace == namespace}

    def duplicated_instances(self) -> list[str]:
        seen: dict[tuple[str, str], int] = {}
        for r in self.replicas.values():
            seen[(r.namespace, r.instance)] = seen.get((r.namespace, r.instance), 0) + 1
        return sorted(f"{ns}/{name} x{n}" for (ns, name), n in seen.items() if n > 1)


def scan(data_dir: Path) -> Scan:
    envs, workspaces, gateway = f"{data_dir}/engine/envs/", f"{data_dir}/workspaces/", str(data_dir / "gateway")
    found = Scan()
    for proc in psutil.process_iter(["pid", "cmdline", "environ", "status"]):
        info = proc.info
        if info["status"] == psutil.STATUS_ZOMBIE:
            continue
        environ = info.get("environ") or {}
        cmdline = " ".join(info.get("cmdline") or [])
        if environ.get("DATA_DIR", "").startswith(envs) and environ.get("JUANIE_INSTANCE"):
            found.replicas[info["pid"]] = Replica(info["pid"], environ.get("JUANIE_NAMESPACE", ""),
                                                  environ["JUANIE_INSTANCE"])
        elif environ.get("JUANIE_WORKSPACE", "").startswith(workspaces) and environ.get("JUANIE_RUN_ID"):
            found.steps[info["pid"]] = environ["JUANIE_RUN_ID"]
        elif "juanie.engines.local.gateway" in cmdline and gateway in cmdline:
            found.gateways.add(info["pid"])
    # A sandboxed replica is a tree (bubblewrap, its init, the application) carrying the same identity; the engine
    # knows it by its outermost process, so that is the one counted.
    parents = {pid: _parent(pid) for pid in found.replicas}
    def outermost(pid: int, r: Replica) -> bool:
        parent = found.replicas.get(parents[pid] or -1)
        return parent is None or (parent.namespace, parent.instance) != (r.namespace, r.instance)

    found.replicas = {pid: r for pid, r in found.replicas.items() if outermost(pid, r)}
    return found


def _parent(pid: int) -> int | None:
    try:
        return psutil.Process(pid).ppid()
    except psutil.Error:
        return None


def status_pids(status: dict[str, Any], *, terminating: bool = True) -> dict[str, set[int]]:
    """workload -> the pids the engine says run for it (terminating replicas included unless told: they still run,
    but are on their way out)."""
    return {w["name"]: {i["pid"] for i in w["instances"] if i["pid"] and (terminating or i["phase"] != "Terminating")}
            for w in status["workloads"]}


def all_events(server: Server) -> list[dict[str, Any]]:
    """The whole event log, oldest first, paged with the API's `after` cursor."""
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = server.ok("GET", "/api/events", params={"after": after, "limit": 500})
        events.extend(page["items"])
        if len(page["items"]) < 500:
            return events
        after = page["next_after"]


def event_problems(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    """What a crash may not do to the log: lose or change an event the API had shown, reuse an id, or leave the ids
    out of order. (SQLite has one writer at a time, so an id below one already seen can only be a reused id.)"""
    problems: list[str] = []
    ids = [e["id"] for e in after]
    if ids != sorted(set(ids)):
        problems.append("event ids are not strictly increasing")
    now = {e["id"]: e for e in after}
    for event in before:
        if event["id"] not in now:
            problems.append(f"event {event['id']} ({event['kind']} {event['subject']}) was lost")
        elif now[event["id"]] != event:
            problems.append(f"event {event['id']} changed: {event} -> {now[event['id']]}")
    seen = {e["id"] for e in before}
    newest = max(seen, default=0)
    problems += [f"event {i} appeared below id {newest}, which was already shown" for i in ids
                 if i < newest and i not in seen]
    return problems


def lifecycles(events: Iterable[dict[str, Any]]) -> tuple[dict[str, str], list[str]]:
    """Replay the log: every run and deployment starts once and then moves from the state it was in, in id order.

    Returns each subject's state as the log tells it (to compare with what the API says) and the breaches.
    """
    state: dict[str, str] = {}
    problems: list[str] = []
    for e in events:
        kind, subject = e["kind"], e["subject"]
        family, _, target = kind.partition(".")
        if kind in ("pipeline.queued", "deployment.created"):
            if subject in state:
                problems.append(f"{subject}: {kind} twice (event {e['id']})")
            state[subject] = "queued" if family == "pipeline" else "pending"
        elif (family == "pipeline" and target in _RUN_STATES) or (family == "deployment"
                                                                   and target in _DEPLOYMENT_STATES):
            data = e.get("data") or {}
            if subject not in state:
                problems.append(f"{subject}: {kind} (event {e['id']}) before it was created")
            elif (data.get("from"), data.get("to")) != (state[subject], target):
                problems.append(f"{subject}: {kind} (event {e['id']}) says {data.get('from')} -> {data.get('to')}, "
                                f"but the log had it {state[subject]}")
            state[subject] = target
    return state, problems


def revisions(data_dir: Path, ids: Iterable[int] | None = None) -> dict[int, tuple[str, int]]:
    """Deployment id -> (status, revision) straight from the database (all unfinished ones when `ids` is None).

    The revision grows with every step the delivery controller records, which is what "the rollout resumed" means
    (the API does not show it); and read while the server is dead, it is exactly where the rollout stood at the kill.
    """
    if ids is None:
        where, args = f"status NOT IN ({','.join('?' * len(DEPLOYMENT_FINAL))})", list(DEPLOYMENT_FINAL)
    else:
        args = sorted(set(ids))
        where = f"id IN ({','.join('?' * len(args))})"
    with sqlite3.connect(f"file:{data_dir / 'juanie.db'}?mode=ro", uri=True, timeout=10) as db:
        rows = db.execute(f"SELECT id, status, revision FROM deployments WHERE {where}", args).fetchall()
    return {int(i): (str(s), int(r)) for i, s, r in rows}


@dataclass
class Kill:
    """One kill -9 and what it took to recover from it."""

    n: int
    moment: str
    in_flight: list[str]
    restart_seconds: float = 0.0
    recovery_seconds: float = 0.0
    outcome: list[str] = field(default_factory=list)


def summary(seed: int, kills: list[Kill], load: dict[str, int], phases: dict[str, float]) -> str:
    took = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in phases.items())
    lines = [f"crash harness: seed {seed} (replay with JUANIE_CRASH_SEED={seed}), {len(kills)} kills; {took}"]
    for k in kills:
        lines.append(f"  #{k.n:>2} {k.moment:<18} restart {k.restart_seconds:4.1f}s, recovered "
                     f"{k.recovery_seconds:4.1f}s; in flight: {'; '.join(k.in_flight) or 'nothing'}")
        lines += [f"        -> {o}" for o in k.outcome]
    recovery = [k.recovery_seconds for k in kills]
    restart = [k.restart_seconds for k in kills]
    if kills:
        lines.append(f"  recovery (restart to all checks passing): median {statistics.median(recovery):.1f}s, "
                     f"max {max(recovery):.1f}s; restart to ready: median {statistics.median(restart):.1f}s, "
                     f"max {max(restart):.1f}s")
    lines.append(f"  gateway load: {dict(sorted(load.items()))}")
    return "\n".join(lines)
