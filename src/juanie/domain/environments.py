"""The environments a project gets when it says nothing else, and the branch rules that feed them.

Defaults follow the platform contract: dev / staging / prod with replicas 1/2/3, sizes S/M/L, approvals
none/optional/required, namespace `<project>-<env>`, and branches feature/* + develop → dev, release/* → staging,
main → prod. Deploys to prod are restricted (owners and explicit grants only).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

APPROVALS = ("none", "optional", "required")
SIZES = ("S", "M", "L")
_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")


@dataclass(frozen=True)
class EnvironmentDefaults:
    name: str
    replicas: int
    size: str
    approval: str
    branches: tuple[str, ...]
    auto_deploy: bool
    order: int
    deploy_restricted: bool = False
    strategy: str = "rolling"
    extra: dict[str, object] = field(default_factory=dict)


DEFAULT_ENVIRONMENTS: tuple[EnvironmentDefaults, ...] = (
    EnvironmentDefaults("dev", 1, "S", "none", ("feature/*", "develop"), True, 0, strategy="rolling"),
    EnvironmentDefaults("staging", 2, "M", "optional", ("release/*",), False, 1, strategy="canary"),
    EnvironmentDefaults("prod", 3, "L", "required", ("main",), False, 2, deploy_restricted=True, strategy="canary"),
)


def restricted_by_default(name: str, approval: str) -> bool:
    """Deploys to prod, and to any environment that requires an approval, are restricted unless said otherwise:
    only owners and the people granted deploy on that environment may deploy there (see `domain.rbac`)."""
    return name == "prod" or approval == "required"


def namespace_for(project: str, env: str) -> str:
    return f"{project}-{env}"


def validate_name(value: str, what: str = "name") -> str:
    """Project and environment names become DNS labels (namespaces, hosts), so they must be one."""
    if not _NAME.match(value or ""):
        raise ValueError(
            f"{what} {value!r} is not valid: use 1-40 lowercase letters, digits and '-', "
            "starting with a letter and not ending with '-'"
        )
    return value


def branch_matches(branch: str, patterns: tuple[str, ...] | list[str]) -> bool:
    return any(fnmatch.fnmatchcase(branch, pattern) for pattern in patterns)


def environment_for_branch(branch: str, rules: list[tuple[str, tuple[str, ...] | list[str]]]) -> str | None:
    """The first environment (in order) whose branch patterns match `branch`, or None."""
    for env_name, patterns in rules:
        if branch_matches(branch, patterns):
            return env_name
    return None
