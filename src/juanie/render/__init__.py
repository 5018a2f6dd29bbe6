"""spec + environment + release -> Kubernetes manifests and the devops tree. Pure: no I/O anywhere here."""

from .manifests import render_manifests
from .policy import Finding, lint_manifests, lint_tree, score
from .release import UNRELEASED, ReleaseRef, image_for
from .tree import render_tree
from .yamlout import dump, dump_all

__all__ = [
    "UNRELEASED",
    "Finding",
    "ReleaseRef",
    "dump",
    "dump_all",
    "image_for",
    "lint_manifests",
    "lint_tree",
    "render_manifests",
    "render_tree",
    "score",
]
