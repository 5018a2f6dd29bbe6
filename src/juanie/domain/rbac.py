"""Who may do what: project roles and environment permissions as pure rules.

Project roles are ordered (viewer < developer < maintainer < owner). Environment permissions (read < deploy < admin)
follow from the project role, except on an environment whose deploys are *restricted*: there only the owners and
the users or teams granted a permission explicitly may deploy (the usual rule for prod).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class Role(IntEnum):
    viewer = 1
    developer = 2
    maintainer = 3
    owner = 4

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls[value]
        except KeyError:
            raise ValueError(
                f"unknown role {value!r}; expected one of {', '.join(r.name for r in cls)}"
            ) from None


class EnvPermission(IntEnum):
    none = 0
    read = 1
    deploy = 2
    admin = 3

    @classmethod
    def parse(cls, value: str) -> EnvPermission:
        try:
            perm = cls[value]
        except KeyError:
            perm = cls.none
        if perm is cls.none:
            raise ValueError(f"unknown environment permission {value!r}; expected read, deploy or admin")
        return perm


# The project actions the API checks; each names the least role that may do it.
PROJECT_ACTIONS: dict[str, Role] = {
    "project.read": Role.viewer,
    "project.update": Role.maintainer,
    "project.archive": Role.owner,
    "project.suspend": Role.maintainer,
    "project.delete": Role.owner,
    "members.manage": Role.owner,
    "environments.manage": Role.maintainer,
    "secrets.read_names": Role.viewer,
    "secrets.write": Role.maintainer,
    "pipelines.run": Role.developer,
    "pipelines.cancel": Role.developer,
    "deployments.create": Role.developer,
}

_ROLE_ENV_PERMISSION: dict[Role, EnvPermission] = {
    Role.viewer: EnvPermission.read,
    Role.developer: EnvPermission.deploy,
    Role.maintainer: EnvPermission.admin,
    Role.owner: EnvPermission.admin,
}


def role_allows(role: Role | None, action: str, *, is_admin: bool = False) -> bool:
    """True if `role` on a project may perform `action`. Site admins may do everything."""
    if is_admin:
        return True
    if action not in PROJECT_ACTIONS:
        raise KeyError(f"unknown project action {action!r}")
    return role is not None and role >= PROJECT_ACTIONS[action]


def env_permission(
    role: Role | None,
    grants: Iterable[EnvPermission] = (),
    *,
    restricted: bool = False,
    is_admin: bool = False,
) -> EnvPermission:
    """The effective permission on one environment.

    `grants` are the explicit grants to the user and to each of their teams on that environment. On a restricted
    environment a project role alone yields at most `read` (owners keep `admin`), so deploy rights must be named.
    """
    if is_admin:
        return EnvPermission.admin
    from_role = _ROLE_ENV_PERMISSION.get(role, EnvPermission.none) if role is not None else EnvPermission.none
    if restricted and role is not Role.owner:
        from_role = min(from_role, EnvPermission.read)
    explicit = max(grants, default=EnvPermission.none)
    if role is None:
        return explicit
    return max(from_role, explicit)
