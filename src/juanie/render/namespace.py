"""Per-environment guard rails: the Namespace (restricted Pod Security), a ResourceQuota and a LimitRange.

The quota is computed from the services themselves: every pod at its limit, at the most replicas the
environment can reach (HPA maximum), twice over for the surge or canary of a rollout. So a rollout never
hits the quota, while
a runaway still does.
"""

from __future__ import annotations

from typing import Any

from juanie.spec import DEFAULT_RESOURCES, cpu_millicores, memory_bytes

from .context import EnvContext

Manifest = dict[str, Any]
_MI = 1024 * 1024


def _mi(n_bytes: int) -> str:
    return f"{-(-n_bytes // _MI)}Mi"


def namespace(ctx: EnvContext) -> Manifest:
    labels = ctx.labels() | {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ctx.namespace, "labels": labels}}


def _max_pods(ctx: EnvContext, name: str) -> int:
    service = ctx.spec.services[name]
    pods = ctx.env.replicas
    if service.autoscaling is not None and ctx.env.autoscale:
        pods = max(pods, service.autoscaling.max)
    return pods


def resource_quota(ctx: EnvContext) -> Manifest:
    pods = cpu_req = cpu_lim = mem_req = mem_lim = 0
    for name, service in ctx.spec.services.items():
        n = 2 * _max_pods(ctx, name)
        res = service.resources_for(ctx.env.size)
        pods += n
        cpu_req += n * cpu_millicores(res.requests.cpu)
        cpu_lim += n * cpu_millicores(res.limits.cpu)
        mem_req += n * memory_bytes(res.requests.memory)
        mem_lim += n * memory_bytes(res.limits.memory)
    hard = {
        "pods": str(pods),
        "requests.cpu": f"{cpu_req}m",
        "requests.memory": _mi(mem_req),
        "limits.cpu": f"{cpu_lim}m",
        "limits.memory": _mi(mem_lim),
    }
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": ctx.meta("quota"),
        "spec": {"hard": hard},
    }


def limit_range(ctx: EnvContext) -> Manifest:
    """Defaults for containers that do not say (size S), and a ceiling at the largest declared limit."""
    small = DEFAULT_RESOURCES["S"]
    limits = [s.resources_for(ctx.env.size).limits for s in ctx.spec.services.values()] + [small.limits]
    max_cpu = max(cpu_millicores(q.cpu) for q in limits)
    max_mem = max(memory_bytes(q.memory) for q in limits)
    item = {
        "type": "Container",
        "default": {"cpu": small.limits.cpu, "memory": small.limits.memory},
        "defaultRequest": {"cpu": small.requests.cpu, "memory": small.requests.memory},
        "max": {"cpu": f"{max_cpu}m", "memory": _mi(max_mem)},
    }
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": ctx.meta("limits"),
        "spec": {"limits": [item]},
    }
