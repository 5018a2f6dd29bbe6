"""PromQL for the default alerts and SLOs, on the metrics Juanie and Kubernetes expose.

Request metrics come from Juanie's gateway (`juanie_gateway_requests_total{env,service,version,code}` and the
`juanie_gateway_request_duration_seconds` histogram); container metrics from cAdvisor and kube-state-metrics,
where the container is named after the service; `up` from the scrape job named after the project.
"""

from __future__ import annotations

from juanie.spec import ProjectSpec

REQUESTS = "juanie_gateway_requests_total"
DURATION = "juanie_gateway_request_duration_seconds_bucket"


def number(value: float) -> str:
    """A threshold as PromQL and YAML like to read it: `5`, `0.005`, never `0.0050000000000000044`."""
    return f"{value:.6g}"


def service_matcher(spec: ProjectSpec, service: str | None = None) -> str:
    names = [service] if service else list(spec.services)
    return f'service=~"{"|".join(names)}"'


def namespace_matcher(spec: ProjectSpec) -> str:
    names = [env.namespace or "" for env in spec.environments.values()]
    return f'namespace=~"{"|".join(names)}"'


def _container_ratio(spec: ProjectSpec, usage: str, resource: str) -> str:
    """Usage over limit in percent; `usage` has a `SEL` placeholder for the series selector."""
    sel = f'{namespace_matcher(spec)}, container=~"{"|".join(spec.services)}"'
    used = f"sum by (namespace, container) ({usage.replace('SEL', sel)})"
    limits = f'kube_pod_container_resource_limits{{resource="{resource}", {sel}}}'
    limit = f"sum by (namespace, container) ({limits})"
    return f'label_replace(100 * {used} / {limit}, "service", "$1", "container", "(.*)")'


def default_expr(spec: ProjectSpec, name: str, threshold: float | None) -> str:
    """The expression of a default alert for the whole project, grouped by env and service."""
    svc = service_matcher(spec)
    t = number(threshold) if threshold is not None else ""
    if name == "ServiceDown":
        return f'up{{job="{spec.name}"}} == 0'
    if name == "HighErrorRate":
        errors = f'sum by (env, service) (rate({REQUESTS}{{{svc}, code=~"5.."}}[5m]))'
        total = f"sum by (env, service) (rate({REQUESTS}{{{svc}}}[5m]))"
        return f"100 * {errors} / {total} > {t}"
    if name == "HighLatency":
        return f"histogram_quantile(0.95, sum by (env, service, le) (rate({DURATION}{{{svc}}}[5m]))) > {t}"
    if name == "HighCPU":
        return f"{_container_ratio(spec, 'rate(container_cpu_usage_seconds_total{SEL}[5m])', 'cpu')} > {t}"
    if name == "HighMemory":
        return f"{_container_ratio(spec, 'container_memory_working_set_bytes{SEL}', 'memory')} > {t}"
    if name == "FrequentRestarts":
        ns = namespace_matcher(spec)
        containers = f'container=~"{"|".join(spec.services)}"'
        restarts = f"increase(kube_pod_container_status_restarts_total{{{ns}, {containers}}}[1h])"
        return f'label_replace({restarts}, "service", "$1", "container", "(.*)") > {t}'
    raise KeyError(f"no default expression for alert {name}")


def error_ratio(spec: ProjectSpec, window: str) -> str:
    """Share of 5xx responses per env and service over `window` (the SLO recording rules)."""
    svc = service_matcher(spec)
    errors = f'sum by (env, service) (rate({REQUESTS}{{{svc}, code=~"5.."}}[{window}]))'
    total = f"sum by (env, service) (rate({REQUESTS}{{{svc}}}[{window}]))"
    return f"{errors} / {total}"


def latency_quantile(service: str, percentile: int) -> str:
    q = number(percentile / 100)
    return f'histogram_quantile({q}, sum by (env, service, le) (rate({DURATION}{{service="{service}"}}[5m])))'
