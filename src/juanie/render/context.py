"""What every manifest of one environment needs: the spec, the environment, the release, the labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from juanie.spec import Environment, ProjectSpec

from .release import ReleaseRef, image_for, version_of

NAME = "app.kubernetes.io/name"
PART_OF = "app.kubernetes.io/part-of"
VERSION = "app.kubernetes.io/version"
MANAGED_BY = "app.kubernetes.io/managed-by"
ENV = "juanie.dev/env"
TRACK = "juanie.dev/track"


@dataclass(frozen=True)
class EnvContext:
    """One environment being rendered; `images` overrides the release's (the Kustomize base uses names)."""

    spec: ProjectSpec
    env_name: str
    env: Environment
    release: ReleaseRef | None = None
    images: dict[str, str] | None = None
    with_env_label: bool = True

    @property
    def namespace(self) -> str:
        assert self.env.namespace is not None
        return self.env.namespace

    @property
    def version(self) -> str:
        return version_of(self.release)

    @property
    def progressive(self) -> bool:
        """Canary and blue-green need stable/canary Services and a weighted route."""
        return self.env.strategy.type in ("canary", "blue_green")

    def image(self, service: str) -> str:
        if self.images is not None:
            return self.images[service]
        return image_for(self.spec, self.release, service)

    def labels(self, service: str | None = None, *, versioned: bool = False) -> dict[str, str]:
        labels: dict[str, str] = {}
        if service is not None:
            labels[NAME] = service
        labels[PART_OF] = self.spec.name
        if versioned:
            labels[VERSION] = self.version
        labels[MANAGED_BY] = "juanie"
        if self.with_env_label:
            labels[ENV] = self.env_name
        return labels

    def selector(self, service: str, track: str | None = None) -> dict[str, str]:
        """Pods of a service; the stable track is part of the selector in progressive environments."""
        selector = {NAME: service}
        if track is not None:
            selector[TRACK] = track
        return selector

    def meta(self, name: str, service: str | None = None, **extra: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "namespace": self.namespace, "labels": self.labels(service)}
        meta.update(extra)
        return meta
