"""The root of `juanie.yaml`: the project, its services and environments, and how they are operated."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .alerts import effective_alerts
from .base import SpecModel
from .environment import Environment, complete_environment, default_environments
from .fields import DnsLabel, StringList
from .operations import Alerting, AlertRule, Backup, LoadTest, Pipeline, Slo
from .service import Service


class OnCall(SpecModel):
    """Who answers when production pages."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    slack: str | None = None
    pagerduty: str | None = None


class GitOps(SpecModel):
    """The GitOps repository that holds the rendered tree (read by Flux in Flux mode)."""

    url: str | None = Field(
        default=None, description="default https://juanie.localhost/git/<project>-gitops.git"
    )
    branch: str = "main"


class ProjectMeta(SpecModel):
    name: DnsLabel
    description: str = ""
    team: str | None = None
    owners: StringList = Field(default_factory=list)
    on_call: OnCall | None = None
    repository: str | None = None
    registry: str | None = Field(
        default=None, description="image registry, e.g. ghcr.io/acme; default juanie.local"
    )
    gitops: GitOps = GitOps()


class Gateway(SpecModel):
    """The Gateway API `Gateway` that the services' `HTTPRoute`s attach to."""

    name: DnsLabel = "juanie-gateway"
    namespace: DnsLabel = "juanie-system"


class ProjectSpec(SpecModel):
    """A whole `juanie.yaml`. After loading, every environment is complete (defaults filled in)."""

    version: Literal[1] = 1
    project: ProjectMeta
    services: dict[DnsLabel, Service] = Field(min_length=1)
    environments: dict[DnsLabel, Environment] = Field(default_factory=dict, min_length=0)
    gateway: Gateway = Gateway()
    slo: Slo = Slo()
    alerts: list[AlertRule] = Field(default_factory=list)
    alerting: Alerting = Alerting()
    pipeline: Pipeline = Pipeline()
    load_tests: list[LoadTest] = Field(default_factory=list)
    backups: list[Backup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> ProjectSpec:
        name = self.project.name
        if not self.environments:
            envs = default_environments(name)
        else:
            envs = {k: complete_environment(name, k, v) for k, v in self.environments.items()}
        object.__setattr__(self, "environments", envs)
        return self

    @property
    def name(self) -> str:
        return self.project.name

    def slo_for(self, service: str) -> Slo:
        """The service's own SLO if it declares one, else the project's."""
        return self.services[service].slo or self.slo

    def alert_rules(self) -> list[AlertRule]:
        """The enabled alert rules: defaults changed by same-named entries, then the custom ones."""
        return effective_alerts(self.alerts)

    def image_repository(self, service: str) -> str:
        registry = self.project.registry or "juanie.local"
        return f"{registry.rstrip('/')}/{self.name}/{service}"
