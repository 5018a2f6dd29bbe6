"""Which environment a branch deploys to: the first environment (in file order) whose pattern matches."""

from __future__ import annotations

from fnmatch import fnmatchcase

from .project import ProjectSpec


def environment_for_branch(spec: ProjectSpec, branch: str) -> str | None:
    """`feature/login` -> "dev" with the defaults; None when no environment takes the branch.

    Patterns are shell globs matched case-sensitively; `refs/heads/` is stripped so that refs from push
    payloads can be passed as they are.
    """
    name = branch.removeprefix("refs/heads/")
    for env_name, env in spec.environments.items():
        if any(fnmatchcase(name, pattern) for pattern in env.branches):
            return env_name
    return None
