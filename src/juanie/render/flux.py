"""Flux objects per environment: a GitRepository for the GitOps repo and a Kustomization applying
`rendered/<env>` every minute, pruning what was removed and waiting for the Deployments to be healthy."""

from __future__ import annotations

from typing import Any

from juanie.spec import ProjectSpec


def gitops_url(spec: ProjectSpec) -> str:
    return spec.project.gitops.url or f"https://juanie.localhost/git/{spec.name}-gitops.git"


def flux_objects(spec: ProjectSpec, env_name: str) -> list[dict[str, Any]]:
    env = spec.environments[env_name]
    name = f"{spec.name}-{env_name}"
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {"interval": "1m", "url": gitops_url(spec), "ref": {"branch": spec.project.gitops.branch}},
    }
    health = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": svc, "namespace": env.namespace}
        for svc in spec.services
    ]
    kustomization = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {
            "interval": "1m",
            "retryInterval": "30s",
            "timeout": "5m",
            "path": f"./rendered/{env_name}",
            "prune": True,
            "wait": False,
            "sourceRef": {"kind": "GitRepository", "name": name},
            "targetNamespace": env.namespace,
            "healthChecks": health,
        },
    }
    return [source, kustomization]
