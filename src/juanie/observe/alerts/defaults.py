"""The default alert rules every Juanie service gets, over the gateway's and the local engine's metric names.

Thresholds are parameters so ``juanie.yaml`` can tune them without rewriting the expressions.
"""

from __future__ import annotations

from juanie.observe.alerts.rules import AlertRule

_REQUESTS = "juanie_gateway_requests_total"
_DURATION = "juanie_gateway_request_duration_seconds_bucket"
_RUNBOOK = "{{ $externalURL }}/runbooks/{{ $labels.alertname }}"


def default_rules(
    error_ratio: float = 0.05,
    latency_p99_seconds: float = 1.0,
    cpu_ratio: float = 0.9,
    memory_bytes: float = 1024**3,
    restarts_per_15m: float = 3,
    window: str = "5m",
) -> list[AlertRule]:
    """HighErrorRate, HighLatency, ServiceDown, HighCPU, HighMemory, CrashLooping and TargetDown."""
    by = "env, service"
    return [
        AlertRule(
            "HighErrorRate",
            f'sum by ({by}) (rate({_REQUESTS}{{code=~"5.."}}[{window}])) / sum by ({by}) (rate({_REQUESTS}[{window}]))'
            f" > {error_ratio}",
            for_seconds=120,
            severity="P1",
            annotations={
                "summary": (
                    "{{ $labels.service }} in {{ $labels.env }}: {{ $value | humanizePercentage }} of requests fail"
                ),
                "description": f"More than {error_ratio:.0%} of requests answered 5xx over {window}.",
                "runbook_url": _RUNBOOK,
            },
        ),
        AlertRule(
            "HighLatency",
            f"histogram_quantile(0.99, sum by ({by}, le) (rate({_DURATION}[{window}]))) > {latency_p99_seconds}",
            for_seconds=300,
            severity="P2",
            annotations={
                "summary": "{{ $labels.service }} in {{ $labels.env }}: p99 latency {{ $value | humanizeDuration }}",
                "description": f"The 99th percentile of request latency is above {latency_p99_seconds}s.",
                "runbook_url": _RUNBOOK,
            },
        ),
        AlertRule(
            "ServiceDown",
            f'max by ({by}) (up{{service!=""}}) == 0',
            for_seconds=60,
            severity="P0",
            annotations={
                "summary": "{{ $labels.service }} in {{ $labels.env }} is down: no instance is up",
                "description": "Every instance of the service failed its health checks for a minute.",
                "runbook_url": _RUNBOOK,
            },
        ),
        AlertRule(
            "HighCPU",
            f"avg by ({by}) (juanie_process_cpu_ratio) > {cpu_ratio}",
            for_seconds=600,
            severity="P3",
            annotations={
                "summary": "{{ $labels.service }} in {{ $labels.env }} uses {{ $value | humanizePercentage }} CPU",
                "runbook_url": _RUNBOOK,
            },
        ),
        AlertRule(
            "HighMemory",
            f"max by ({by}) (juanie_process_memory_bytes) > {memory_bytes:g}",
            for_seconds=600,
            severity="P3",
            annotations={
                "summary": "{{ $labels.service }} in {{ $labels.env }} holds {{ $value | humanize }}B of memory",
                "runbook_url": _RUNBOOK,
            },
        ),
        AlertRule(
            "CrashLooping",
            f"sum by ({by}) (increase(juanie_process_restarts_total[15m])) > {restarts_per_15m:g}",
            for_seconds=0,
            severity="P1",
            annotations={
                "summary": "{{ $labels.service }} in {{ $labels.env }} restarted {{ $value }} times in 15m",
                "runbook_url": _RUNBOOK,
            },
        ),
        AlertRule(
            "TargetDown",
            'up{job!=""} == 0',
            for_seconds=300,
            severity="P3",
            annotations={"summary": "scrape target {{ $labels.instance }} of job {{ $labels.job }} is down"},
        ),
    ]
