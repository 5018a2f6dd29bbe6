"""The flat manifests of one environment: what `rendered/<env>/manifests.yaml` holds and engines apply."""

from __future__ import annotations

from typing import Any

from juanie.spec import ProjectSpec

from .context import EnvContext
from .namespace import limit_range, namespace, resource_quota
from .network import http_route, namespace_policies, service_policy
from .release import ReleaseRef
from .workloads import autoscaler, deployment, disruption_budget, services

Manifest = dict[str, Any]
MONITORING_NAMESPACE = "monitoring"


def context(
    spec: ProjectSpec,
    env_name: str,
    release: ReleaseRef | None = None,
    *,
    images: dict[str, str] | None = None,
    with_env_label: bool = True,
) -> EnvContext:
    if env_name not in spec.environments:
        known = ", ".join(spec.environments)
        raise KeyError(f'unknown environment "{env_name}"; expected one of {known}')
    return EnvContext(spec, env_name, spec.environments[env_name], release, images, with_env_label)


def manifests_for(ctx: EnvContext) -> list[Manifest]:
    """Namespace-level objects first, then each service's objects in file order (a stable, readable order)."""
    objects: list[Manifest] = [
        namespace(ctx),
        resource_quota(ctx),
        limit_range(ctx),
        *namespace_policies(ctx),
    ]
    for name, service in ctx.spec.services.items():
        objects.append(deployment(ctx, name, service))
        objects.extend(services(ctx, name, service))
        objects.append(http_route(ctx, name, service))
        objects.append(service_policy(ctx, name, service, MONITORING_NAMESPACE))
        for optional in (disruption_budget(ctx, name), autoscaler(ctx, name, service)):
            if optional is not None:
                objects.append(optional)
    return objects


def render_manifests(spec: ProjectSpec, env_name: str, release: ReleaseRef | None = None) -> list[Manifest]:
    """The environment's objects for a release (None: the unreleased placeholder images). Pure."""
    return manifests_for(context(spec, env_name, release))
