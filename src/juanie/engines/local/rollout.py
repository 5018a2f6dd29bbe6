"""Pure decisions of the supervisor: the next rolling-update step, restart back-off, and a workload's health.

These are the rules Kubernetes' deployment controller and kubelet follow, reduced to functions of plain values
so
that every edge (surge, unavailability, crash loops, stalled rollouts) is tested without a single process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from juanie.engines.base import Health


@dataclass(frozen=True)
class InstanceView:
    """What the planner needs to know about one replica."""

    name: str
    template_hash: str
    ready: bool
    running: bool  # a live process (not waiting in back-off)
    restarts: int = 0
    crash_looping: bool = False


@dataclass(frozen=True)
class Plan:
    """One step toward the desired replicas: how many new instances to start and which ones to stop."""

    start: int = 0
    stop: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.start and not self.stop


def plan_rollout(
    desired: int, template_hash: str, max_surge: int, max_unavailable: int, instances: list[InstanceView]
) -> Plan:
    """The next step of a rolling update (or a plain scale) that never drops below `desired - max_unavailable`
    ready replicas and never runs more than `desired + max_surge` instances.

    Old-template instances that are not ready are removed first: they serve nothing, so removing them costs no
    availability (the same choice Kubernetes makes). When the new template never becomes ready the plan stops
    making progress, which is exactly the stalled rollout the status then reports.
    """
    new = [i for i in instances if i.template_hash == template_hash]
    old = [i for i in instances if i.template_hash != template_hash]
    ready = sum(1 for i in instances if i.ready)
    min_ready = max(0, desired - max_unavailable)
    # Old instances that are not ready serve nothing: they go at once.
    stop = [i.name for i in old if not i.ready]
    remaining = len(instances) - len(stop)
    start = max(0, min(desired - len(new), desired + max_surge - remaining))
    # Old ready instances go as far as availability allows.
    old_ready = [i for i in old if i.ready]
    removable = max(0, min(len(old_ready), ready - min_ready))
    stop.extend(i.name for i in old_ready[:removable])
    # Too many new instances (a scale-down): the ones that serve nothing first.
    if len(new) > desired:
        excess = sorted(new, key=lambda i: (i.ready, i.running, i.name))[: len(new) - desired]
        stop.extend(i.name for i in excess)
    return Plan(start=start, stop=tuple(stop))


def backoff_delay(restarts: int, base: float, cap: float) -> float:
    """Seconds before restart number `restarts` (1-based): base, 2*base, 4*base, ... up to cap (kubelet)."""
    if restarts <= 0:
        return 0.0
    return min(cap, base * (2 ** min(restarts - 1, 30)))


@dataclass(frozen=True)
class HealthInput:
    desired: int
    template_hash: str
    instances: list[InstanceView] = field(default_factory=list)
    rollout_age: float = 0.0  # seconds since the current template was first wanted and not yet complete
    progress_deadline: float = 600.0
    last_error: str = ""
    paused: bool = False


def workload_health(h: HealthInput) -> tuple[Health, str]:
    """Argo-CD-like health of one workload with a sentence that says why."""
    new = [i for i in h.instances if i.template_hash == h.template_hash]
    old = [i for i in h.instances if i.template_hash != h.template_hash]
    new_ready = sum(1 for i in new if i.ready)
    if h.paused:
        return "Suspended", "rollout paused"
    looping = [i for i in new if i.crash_looping]
    if looping:
        worst = max(looping, key=lambda i: i.restarts)
        why = f": {h.last_error}" if h.last_error else ""
        return "Degraded", f"CrashLoopBackOff: {worst.name} restarted {worst.restarts} times{why}"
    if h.desired == 0 and not h.instances:
        return "Healthy", "scaled to zero"
    if not h.instances:
        return "Missing", "no instance is running yet"
    if new_ready >= h.desired and not old:
        if len(new) > h.desired:  # as a Deployment's rollout is complete only once status.replicas == spec.replicas
            return "Progressing", f"scaling down: {len(new)} replicas running, {h.desired} desired"
        return "Healthy", f"{new_ready}/{h.desired} replicas ready"
    if h.rollout_age > h.progress_deadline:
        why = f": {h.last_error}" if h.last_error else ""
        return (
            "Degraded",
            f"rollout stalled: {new_ready}/{h.desired} new replicas ready after {h.rollout_age:.0f}s "
            f"(progress deadline {h.progress_deadline:g}s){why}",
        )
    return "Progressing", f"{new_ready}/{h.desired} new replicas ready, {len(old)} old still running"


def aggregate_health(healths: list[Health]) -> Health:
    """An environment is as healthy as its worst workload (Argo CD's order)."""
    order: list[Health] = ["Degraded", "Missing", "Progressing", "Suspended", "Unknown", "Healthy"]
    for state in order:
        if state in healths:
            return state
    return "Healthy"
