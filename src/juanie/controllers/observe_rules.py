"""A project's alerting configuration from its ``juanie.yaml``: the rules, the route tree and the receivers. Pure.

The rules are exactly those ``juanie render`` exports for Prometheus (``monitoring/rules/alerts.yaml``), parsed by
the observe core, so an alert means the same in Juanie and in a team's own Prometheus. A few defaults are written
for Kubernetes' container metrics (cAdvisor, kube-state-metrics); on the embedded store they are evaluated over the
local engine's process metrics instead, and a rule that has no local meaning is reported, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from juanie.observe.alerts.config import RuleConfigError, rule_from_config
from juanie.observe.alerts.route import Route
from juanie.observe.alerts.rules import AlertRule, LogRule
from juanie.observe.matchers import Matcher
from juanie.render.alertrules import alert_rules
from juanie.render.promql import number, service_matcher
from juanie.spec import ProjectSpec

PROJECT_RECEIVER = "project"


@dataclass(frozen=True)
class RuleSet:
    rules: list[AlertRule | LogRule] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # rule name -> why it is not evaluated


def _local_expr(spec: ProjectSpec, name: str, threshold: float | None) -> str | None:
    """The default rules' meaning over the local engine's metrics (``juanie_process_*``), when there is one."""
    svc = service_matcher(spec)
    t = number(threshold) if threshold is not None else "0"
    if name == "HighCPU":
        return f"100 * max by (env, service) (juanie_process_cpu_ratio{{{svc}}}) > {t}"
    if name == "FrequentRestarts":
        return f"sum by (env, service) (increase(juanie_process_restarts_total{{{svc}}}[1h])) > {t}"
    return None


def rules_for_spec(spec: ProjectSpec, embedded: bool = True) -> RuleSet:
    """The project's rules as the observe core evaluates them, plus an error for each rule it cannot evaluate."""
    thresholds = {r.name: r.threshold for r in spec.alert_rules()}
    entries = alert_rules(spec)["groups"][0]["rules"]
    rules: list[AlertRule | LogRule] = []
    errors: dict[str, str] = {}
    for entry in entries:
        where = f"alerts[{entry['alert']}]"
        try:
            rules.append(rule_from_config(entry, where))
            continue
        except RuleConfigError as exc:
            problem = str(exc)
        local = _local_expr(spec, entry["alert"], thresholds.get(entry["alert"])) if embedded else None
        if local is None:
            errors[entry["alert"]] = (
                f"{problem}; the embedded metric store cannot evaluate it — configure a Prometheus URL for the "
                "project to use it"
            )
            continue
        rules.append(rule_from_config({**entry, "expr": local}, where))
    return RuleSet(rules, errors)


def owners(spec: ProjectSpec, team: str = "") -> dict[str, str]:
    """service -> owning team: the project's team (``project.team`` in the file, else the project's record)."""
    owner = spec.project.team or team
    return {service: owner for service in spec.services} if owner else {}


@dataclass(frozen=True)
class Timing:
    group_wait: float
    group_interval: float
    repeat_interval: float


def route_for(group_by: Sequence[str], teams: Sequence[str], timing: Timing) -> Route:
    """Alerts owned by a team go to the team's channels *and* the project's; everything else to the project's.

    The team routes ``continue`` so a team's alert also reaches the project receiver, as Alertmanager does with
    ``continue: true``.
    """
    team_routes = tuple(
        Route(receiver=f"team:{t}", matchers=(Matcher("team", "=", t),), continue_=True) for t in sorted(set(teams))
    )
    return Route(
        receiver=PROJECT_RECEIVER,
        group_by=tuple(group_by),
        group_wait=timing.group_wait,
        group_interval=timing.group_interval,
        repeat_interval=timing.repeat_interval,
        routes=(*team_routes, Route(receiver=PROJECT_RECEIVER)),
    )


def receiver_names(teams: Sequence[str]) -> list[str]:
    return [PROJECT_RECEIVER, *(f"team:{t}" for t in sorted(set(teams)))]


def default_group_by(spec: ProjectSpec | None) -> list[str]:
    return list(spec.alerting.group_by) if spec is not None else ["alertname", "service", "env"]


def metrics_paths(spec: ProjectSpec | None) -> Mapping[str, str | None]:
    """service -> the path its metrics are scraped at (``None``: the service exposes none)."""
    if spec is None:
        return {}
    return {name: service.metrics for name, service in spec.services.items()}
