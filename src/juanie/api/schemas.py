"""Request bodies. Unknown fields are refused (a typo should not be silently ignored)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

# Row ids and offsets are 64-bit integers in every database Juanie runs on; a larger number is a caller's mistake
# (422), not a crash in the database driver.
ROW_ID_MAX = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=ROW_ID_MAX)]

Name = Field(min_length=1, max_length=40, pattern=r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnvironmentIn(Strict):
    name: str = Name
    namespace: str | None = Field(default=None, max_length=63, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
    replicas: int = Field(default=1, ge=0, le=100)
    size: Literal["S", "M", "L"] = "S"
    approval: Literal["none", "optional", "required"] = "none"
    branches: list[str] = Field(default_factory=list, max_length=50)
    auto_deploy: bool = False
    strategy: Literal["rolling", "blue-green", "canary"] = "rolling"
    deploy_restricted: bool | None = Field(
        default=None, description="default: true for prod and for environments whose approval is required"
    )


class EnvironmentPatch(Strict):
    replicas: int | None = Field(default=None, ge=0, le=100)
    size: Literal["S", "M", "L"] | None = None
    approval: Literal["none", "optional", "required"] | None = None
    branches: list[str] | None = Field(default=None, max_length=50)
    auto_deploy: bool | None = None
    strategy: Literal["rolling", "blue-green", "canary"] | None = None
    deploy_restricted: bool | None = None


class ProjectIn(Strict):
    name: str = Name
    description: str = Field(default="", max_length=2000)
    repo_url: str = Field(default="", max_length=1024)
    default_branch: str = Field(default="main", max_length=255)
    team: str = Field(default="", max_length=64)
    environments: list[EnvironmentIn] | None = Field(default=None, max_length=20)


class ProjectPatch(Strict):
    description: str | None = Field(default=None, max_length=2000)
    poll_interval_seconds: int | None = Field(default=None, ge=5, le=86400,
                                              description="how often the source repository is polled")
    gitops_url: str | None = Field(default=None, max_length=1024)
    repo_url: str | None = Field(default=None, max_length=1024)
    default_branch: str | None = Field(default=None, max_length=255)
    team: str | None = Field(default=None, max_length=64)


class TransitionIn(Strict):
    reason: str = Field(default="", max_length=2000)


class MemberIn(Strict):
    user: str | None = Field(default=None, max_length=64)
    team: str | None = Field(default=None, max_length=64)
    role: Literal["viewer", "developer", "maintainer", "owner"]


class GrantIn(Strict):
    user: str | None = Field(default=None, max_length=64)
    team: str | None = Field(default=None, max_length=64)
    permission: Literal["read", "deploy", "admin"]


class SecretIn(Strict):
    value: str = Field(max_length=65536)


class UserIn(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str | None = Field(default=None, min_length=8, max_length=256)
    is_admin: bool = False
    display_name: str = Field(default="", max_length=128)
    email: str = Field(default="", max_length=256)


class TokenIn(Strict):
    name: str = Field(min_length=1, max_length=128)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TeamIn(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class TeamMemberIn(Strict):
    user: str = Field(min_length=1, max_length=64)


class LoginIn(Strict):
    token_name: str = Field(default="login", min_length=1, max_length=128)
    session: bool = False
