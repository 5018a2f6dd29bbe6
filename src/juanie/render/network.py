"""Traffic objects: default-deny NetworkPolicies with the allows services need, and Gateway API HTTPRoutes."""

from __future__ import annotations

from typing import Any

from juanie.spec import Service

from .context import NAME, EnvContext

Manifest = dict[str, Any]
BACKING_PORTS = {"postgres": 5432, "redis": 6379, "rabbitmq": 5672}
_NS_NAME = "kubernetes.io/metadata.name"


def _policy(ctx: EnvContext, name: str, service: str | None, spec: dict[str, Any]) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": ctx.meta(name, service),
        "spec": spec,
    }


def namespace_policies(ctx: EnvContext) -> list[Manifest]:
    """Deny everything in the namespace, then allow DNS: each service's policy opens only what it needs."""
    deny = _policy(ctx, "default-deny", None, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    dns_peer = {
        "namespaceSelector": {"matchLabels": {_NS_NAME: "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }
    dns = _policy(
        ctx,
        "allow-dns",
        None,
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [dns_peer],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                }
            ],
        },
    )
    return [deny, dns]


def service_policy(ctx: EnvContext, name: str, service: Service, monitoring_namespace: str) -> Manifest:
    """Ingress from the gateway, from the services that call this one, and from Prometheus; egress to deps."""
    callers = [n for n, s in ctx.spec.services.items() if name in s.dependencies]
    peers: list[dict[str, Any]] = [
        {"namespaceSelector": {"matchLabels": {_NS_NAME: ctx.spec.gateway.namespace}}},
        {"namespaceSelector": {"matchLabels": {_NS_NAME: monitoring_namespace}}},
    ]
    peers.extend({"podSelector": {"matchLabels": {NAME: caller}}} for caller in callers)
    egress: list[dict[str, Any]] = []
    for dep in service.dependencies:
        if dep in ctx.spec.services:
            egress.append(
                {
                    "to": [{"podSelector": {"matchLabels": {NAME: dep}}}],
                    "ports": [{"protocol": "TCP", "port": ctx.spec.services[dep].port}],
                }
            )
        elif dep in BACKING_PORTS:
            egress.append({"ports": [{"protocol": "TCP", "port": BACKING_PORTS[dep]}]})
    spec: dict[str, Any] = {
        "podSelector": {"matchLabels": {NAME: name}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": service.port}]}],
        "egress": egress,
    }
    return _policy(ctx, f"{name}-allow", name, spec)


def http_route(ctx: EnvContext, name: str, service: Service) -> Manifest:
    """Routes `<service>.<env hostname>`; progressive environments split by weight: stable and canary."""
    if ctx.progressive:
        backends = [
            {"name": f"{name}-stable", "port": service.port, "weight": 100},
            {"name": f"{name}-canary", "port": service.port, "weight": 0},
        ]
    else:
        backends = [{"name": name, "port": service.port, "weight": 100}]
    gateway = ctx.spec.gateway
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": ctx.meta(name, name),
        "spec": {
            "parentRefs": [{"name": gateway.name, "namespace": gateway.namespace}],
            "hostnames": [f"{name}.{ctx.env.hostname}"],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": backends}],
        },
    }
