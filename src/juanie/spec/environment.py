"""Environments and their delivery strategies (rolling, blue-green, canary)."""

from __future__ import annotations

import itertools
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import SpecModel
from .fields import DnsLabel, Duration, IntOrPercent, StringList

StrategyType = Literal["rolling", "blue_green", "canary"]
Approval = Literal["none", "optional", "required"]

_ONLY_FOR: dict[str, StrategyType] = {
    "steps": "canary",
    "preview": "blue_green",
    "auto_promote": "blue_green",
    "auto_promote_after": "blue_green",
    "scale_down_delay": "blue_green",
}


class CanaryStep(SpecModel):
    """Send `weight` percent of traffic to the new version, then hold for `pause` while the judge watches."""

    weight: int = Field(ge=1, le=100)
    pause: Duration = "30s"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"weight": data} if isinstance(data, int) and not isinstance(data, bool) else data


def _default_steps() -> list[CanaryStep]:
    return [CanaryStep(weight=w) for w in (5, 25, 50, 100)]


class Strategy(SpecModel):
    """How a release replaces the one that runs; the fields that only make sense for one type are checked."""

    type: StrategyType = "rolling"
    max_surge: IntOrPercent = "25%"
    max_unavailable: IntOrPercent = 0
    steps: list[CanaryStep] = Field(default_factory=_default_steps, min_length=1)
    preview: bool = Field(
        default=True, description="blue-green: serve the new version on a preview route first"
    )
    auto_promote: bool = False
    auto_promote_after: Duration | None = None
    scale_down_delay: Duration = "30s"

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[CanaryStep]) -> list[CanaryStep]:
        weights = [s.weight for s in steps]
        if any(b <= a for a, b in itertools.pairwise(weights)):
            raise ValueError(f"expected weights that increase step by step, got {weights}")
        if weights[-1] != 100:
            raise ValueError(f"expected the last step to have weight 100, got {weights[-1]}")
        return steps

    @model_validator(mode="after")
    def _fields_fit_type(self) -> Strategy:
        for field, owner in _ONLY_FOR.items():
            if field in self.model_fields_set and self.type != owner:
                raise ValueError(f'"{field}" applies only to type {owner}, but type is {self.type}')
        if self.type == "rolling" and self.max_surge in (0, "0%") and self.max_unavailable in (0, "0%"):
            raise ValueError(
                "expected max_surge or max_unavailable above 0, got both 0 (the rollout could not move)"
            )
        return self


class Environment(SpecModel):
    """One stage of the road to production. Fields left out take the defaults of the environment's name."""

    namespace: DnsLabel | None = Field(default=None, description="default <project>-<env>")
    replicas: int = Field(default=1, ge=1)
    size: Literal["S", "M", "L"] = "S"
    approval: Approval = "none"
    branches: StringList = Field(
        default_factory=list, description="glob patterns of branches that deploy here"
    )
    auto_deploy: bool = False
    autoscale: bool = Field(default=False, description="render HPAs for services with autoscaling")
    strategy: Strategy = Strategy()
    hostname: str | None = Field(default=None, description="default <env>.<project>.localhost")


NAMED_DEFAULTS: dict[str, dict[str, Any]] = {
    "dev": {
        "replicas": 1,
        "size": "S",
        "approval": "none",
        "branches": ["feature/*", "develop"],
        "auto_deploy": True,
        "autoscale": False,
        "strategy": Strategy(type="rolling"),
    },
    "staging": {
        "replicas": 2,
        "size": "M",
        "approval": "optional",
        "branches": ["release/*"],
        "auto_deploy": False,
        "autoscale": True,
        "strategy": Strategy(type="canary"),
    },
    "prod": {
        "replicas": 3,
        "size": "L",
        "approval": "required",
        "branches": ["main"],
        "auto_deploy": False,
        "autoscale": True,
        "strategy": Strategy(type="canary"),
    },
}
"""What `dev`, `staging` and `prod` mean when the file does not say: the usual road to production."""


def complete_environment(project: str, name: str, env: Environment) -> Environment:
    """Fill the fields the file left out from the named defaults and derive namespace and hostname."""
    update = {k: v for k, v in NAMED_DEFAULTS.get(name, {}).items() if k not in env.model_fields_set}
    if env.namespace is None:
        update["namespace"] = f"{project}-{name}"[:63].rstrip("-")
    if env.hostname is None:
        update["hostname"] = f"{name}.{project}.localhost"
    return env.model_copy(update=update)


def default_environments(project: str) -> dict[str, Environment]:
    return {name: complete_environment(project, name, Environment()) for name in NAMED_DEFAULTS}
