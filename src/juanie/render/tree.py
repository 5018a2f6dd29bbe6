"""The whole devops tree of a project as {relative path: content}: Kustomize base and overlays, the flat
rendered manifests, Flux objects, CI/CD workflows and the monitoring configuration."""

from __future__ import annotations

from juanie.spec import ProjectSpec

from .alertmanager import alertmanager_config
from .alertrules import alert_rules, slo_rules
from .flux import flux_objects
from .grafana import dashboard_json
from .kustomize import render_base, render_overlay
from .manifests import context, manifests_for
from .release import ReleaseRef
from .scrape import prometheus_config
from .workflows import cd_workflow, ci_workflow
from .yamlout import dump, dump_all

RULE_FILES = ["rules/alerts.yaml", "rules/slo.yaml"]


def _monitoring(spec: ProjectSpec) -> dict[str, str]:
    return {
        "monitoring/prometheus.yaml": dump(prometheus_config(spec, RULE_FILES)),
        "monitoring/rules/alerts.yaml": dump(alert_rules(spec)),
        "monitoring/rules/slo.yaml": dump(slo_rules(spec)),
        "monitoring/alertmanager.yaml": dump(alertmanager_config(spec)),
        f"monitoring/grafana/{spec.name}.json": dashboard_json(spec),
    }


def render_tree(
    spec: ProjectSpec, release: ReleaseRef | None = None, envs: list[str] | None = None
) -> dict[str, str]:
    """Every file of the tree, sorted by path; the same inputs give the same bytes. Pure.

    `envs` limits the per-environment files (overlays, rendered, flux, cd workflows) to those environments;
    unknown names raise KeyError with the known ones.
    """
    names = list(spec.environments) if envs is None else envs
    tree: dict[str, str] = {}
    tree.update(render_base(spec))
    for name in names:
        ctx = context(spec, name, release)
        tree.update(render_overlay(spec, name, release))
        tree[f"rendered/{name}/manifests.yaml"] = dump_all(manifests_for(ctx))
        tree[f"flux/{name}.yaml"] = dump_all(flux_objects(spec, name))
        tree[f".github/workflows/cd-{name}.yaml"] = dump(cd_workflow(spec, name))
    tree[".github/workflows/ci.yaml"] = dump(ci_workflow(spec))
    tree.update(_monitoring(spec))
    return dict(sorted(tree.items()))
