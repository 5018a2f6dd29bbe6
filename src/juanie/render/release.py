"""Which build of each service an environment runs: the release's version and its images."""

from __future__ import annotations

from dataclasses import dataclass, field

from juanie.spec import ProjectSpec

UNRELEASED = "0.0.0-unreleased"
"""The version shown before any release exists (rendering a project that never built)."""


@dataclass(frozen=True)
class ReleaseRef:
    """A release: its version (a short commit sha) and the image of each service built at that commit.

    Services missing from `images` use Juanie's local address `juanie.local/<project>/<service>:<version>`.
    """

    version: str
    images: dict[str, str] = field(default_factory=dict)


def image_for(spec: ProjectSpec, release: ReleaseRef | None, service: str) -> str:
    if release is not None and service in release.images:
        return release.images[service]
    return f"{spec.image_repository(service)}:{version_of(release)}"


def version_of(release: ReleaseRef | None) -> str:
    return release.version if release is not None else UNRELEASED


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """`reg:5000/a/b:tag@sha256:x` -> (name, tag, digest), the way Kustomize's `images:` entries need it."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest or None
