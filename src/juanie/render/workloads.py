"""Per-service workload objects: Deployment, Services, PodDisruptionBudget, HorizontalPodAutoscaler."""

from __future__ import annotations

from typing import Any

from juanie.spec import Service, duration_seconds

from .context import TRACK, EnvContext

Manifest = dict[str, Any]
_URL_ENV = {"postgres": "DATABASE_URL", "redis": "REDIS_URL", "rabbitmq": "AMQP_URL"}


def _seconds(text: str) -> int:
    return max(1, round(duration_seconds(text)))


def _env(ctx: EnvContext, name: str, service: Service) -> list[dict[str, Any]]:
    """PORT first, then the file's variables, service URLs of dependencies, then secret references.

    Backing services (postgres, redis, rabbitmq) bring their URL from an optional Secret `<project>-<dep>`, so
    the manifest never holds a credential and a missing Secret does not stop the process from starting.
    """
    env: list[dict[str, Any]] = [{"name": "PORT", "value": str(service.port)}]
    env.extend({"name": k, "value": v} for k, v in service.env.items())
    declared = {"PORT", *service.env, *service.secrets}
    for dep in service.dependencies:
        if dep in ctx.spec.services:
            var = dep.upper().replace("-", "_") + "_URL"
            if var not in declared:
                env.append({"name": var, "value": f"http://{dep}:{ctx.spec.services[dep].port}"})
    for dep in service.dependencies:
        var = _URL_ENV.get(dep)
        if var and var not in declared:
            ref = {"name": f"{ctx.spec.name}-{dep}", "key": "url", "optional": True}
            env.append({"name": var, "valueFrom": {"secretKeyRef": ref}})
    for var, secret in service.secrets.items():
        ref = {"name": secret.name or f"{name}-secrets", "key": secret.key or var}
        env.append({"name": var, "valueFrom": {"secretKeyRef": ref}})
    return env


def _probe(service: Service, path: str) -> dict[str, Any]:
    probes = service.probes
    return {
        "httpGet": {"path": path, "port": "http"},
        "initialDelaySeconds": round(duration_seconds(probes.initial_delay)),
        "periodSeconds": _seconds(probes.period),
        "timeoutSeconds": _seconds(probes.timeout),
        "failureThreshold": probes.failure_threshold,
    }


def _container(ctx: EnvContext, name: str, service: Service) -> dict[str, Any]:
    res = service.resources_for(ctx.env.size)
    return {
        "name": name,
        "image": ctx.image(name),
        "imagePullPolicy": "IfNotPresent",
        "command": service.run[:1],
        "args": service.run[1:],
        "ports": [{"name": "http", "containerPort": service.port, "protocol": "TCP"}],
        "env": _env(ctx, name, service),
        "resources": {
            "requests": {"cpu": res.requests.cpu, "memory": res.requests.memory},
            "limits": {"cpu": res.limits.cpu, "memory": res.limits.memory},
        },
        "readinessProbe": _probe(service, service.ready),
        "livenessProbe": _probe(service, service.health),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def deployment(ctx: EnvContext, name: str, service: Service) -> Manifest:
    track = "stable" if ctx.progressive else None
    pod_labels = {**ctx.labels(name, versioned=True), **({TRACK: track} if track else {})}
    strategy = ctx.env.strategy
    annotations = {}
    if service.metrics:
        annotations = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(service.port),
            "prometheus.io/path": service.metrics,
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": ctx.meta(name, name) | {"labels": ctx.labels(name, versioned=True)},
        "spec": {
            "replicas": ctx.env.replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": ctx.selector(name, track)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": strategy.max_surge, "maxUnavailable": strategy.max_unavailable},
            },
            "template": {
                "metadata": {"labels": pod_labels, **({"annotations": annotations} if annotations else {})},
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": round(duration_seconds(service.grace_period)),
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [_container(ctx, name, service)],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def _service(ctx: EnvContext, name: str, svc_name: str, service: Service, track: str | None) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": ctx.meta(svc_name, name),
        "spec": {
            "type": "ClusterIP",
            "selector": ctx.selector(name, track),
            "ports": [{"name": "http", "port": service.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def services(ctx: EnvContext, name: str, service: Service) -> list[Manifest]:
    """`<name>` for callers in the cluster; `-stable`/`-canary` behind the weighted route when progressive."""
    result = [_service(ctx, name, name, service, None)]
    if ctx.progressive:
        result.append(_service(ctx, name, f"{name}-stable", service, "stable"))
        result.append(_service(ctx, name, f"{name}-canary", service, "canary"))
    return result


def disruption_budget(ctx: EnvContext, name: str) -> Manifest | None:
    if ctx.env.replicas <= 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": ctx.meta(name, name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": ctx.selector(name)}},
    }


def autoscaler(ctx: EnvContext, name: str, service: Service) -> Manifest | None:
    scaling = service.autoscaling
    if scaling is None or not ctx.env.autoscale:
        return None
    low = max(scaling.min, ctx.env.replicas)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": ctx.meta(name, name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": low,
            "maxReplicas": max(scaling.max, low),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": scaling.target_cpu},
                    },
                }
            ],
        },
    }
