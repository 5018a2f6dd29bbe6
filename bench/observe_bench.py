"""Observe bench: ingest rate, rule-evaluation cost and memory of the embedded metric store.

Writes bench/results/observe.json. Bounded: each phase has a fixed amount of work (well under two minutes total).
Run: .venv/bin/python bench/observe_bench.py
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from juanie.observe.alerts.rules import AlertRule, evaluate
from juanie.observe.metrics.model import Sample
from juanie.observe.metrics.query import QueryEngine
from juanie.observe.metrics.store import MetricStore

T0 = 1_714_564_800.0
RESULTS = Path(__file__).parent / "results" / "observe.json"


def bench_ingest(series: int = 10_000, samples: int = 30) -> dict[str, float]:
    """Per-sample appends and batched append_many, series × samples at a 15 s interval."""
    labels = [{"service": f"s{i // 10}", "instance": f"i{i % 10}"} for i in range(series)]
    store = MetricStore(max_series=series * 2)
    started = time.perf_counter()
    for k in range(samples):
        ts = T0 + 15 * k
        for lab in labels:
            store.append("bench_total", lab, float(k), ts)
    single = time.perf_counter() - started
    batch_store = MetricStore(max_series=series * 2)
    batches = [[Sample("bench_total", lab, float(k), T0 + 15 * k) for lab in labels] for k in range(samples)]
    started = time.perf_counter()
    for batch in batches:
        batch_store.append_many(batch)
    batched = time.perf_counter() - started
    total = series * samples
    return {
        "series": series,
        "samples_per_series": samples,
        "append_samples_per_second": round(total / single),
        "append_many_samples_per_second": round(total / batched),
    }


def bench_rules(rules_count: int = 1_000, series: int = 10_000) -> dict[str, float]:
    """1,000 error-ratio rules (one per service) over 10,000 request-counter series holding 10 minutes of data."""
    store = MetricStore(max_series=series * 2)
    per_service = series // rules_count  # 10: 2 codes × 5 instances
    for k in range(41):
        ts = T0 + 15 * k
        for s in range(rules_count):
            for j in range(per_service):
                code = "500" if j % 2 else "200"
                value = float(k * (1 if code == "500" and s % 10 == 0 else 0) + k * 10 * (code == "200"))
                store.append(
                    "bench_requests_total", {"service": f"s{s}", "code": code, "instance": f"i{j // 2}"}, value, ts
                )
    engine = QueryEngine(store)
    rules = [
        AlertRule(
            f"ErrorRate{s}",
            f'sum by (service) (rate(bench_requests_total{{service="s{s}",code="500"}}[5m]))'
            f' / sum by (service) (rate(bench_requests_total{{service="s{s}"}}[5m])) > 0.05',
            for_seconds=60,
        )
        for s in range(rules_count)
    ]

    def query(expr: str, at: float) -> list:
        return engine.query(expr, at).samples()

    now = T0 + 600
    timings = []
    state = None
    for _ in range(3):
        started = time.perf_counter()
        state, _transitions = evaluate(rules, query, now, state)
        timings.append(time.perf_counter() - started)
        now += 15
    assert state is not None
    return {
        "rules": rules_count,
        "series": store.series_count(),
        "evaluation_seconds_best": round(min(timings), 4),
        "evaluation_seconds_mean": round(sum(timings) / len(timings), 4),
        "active_alerts": len(state.alerts),
    }


def bench_memory() -> dict[str, float]:
    """24 h of a microshop-sized deployment at 15 s: 4 services × 3 envs with gateway and process metrics."""
    store = MetricStore()
    buckets = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf")
    label_sets: list[tuple[str, dict[str, str]]] = []
    for env in ("shop-dev", "shop-staging", "shop-prod"):
        for service in ("user", "product", "order", "payment"):
            base = {"env": env, "service": service, "version": "v1"}
            for code in ("200", "404", "500", "503"):
                label_sets.append(("juanie_gateway_requests_total", {**base, "code": code}))
            for le in buckets:
                label_sets.append(("juanie_gateway_request_duration_seconds_bucket", {**base, "le": le}))
            label_sets.append(("juanie_gateway_request_duration_seconds_sum", base))
            label_sets.append(("juanie_gateway_request_duration_seconds_count", base))
            for instance in ("0", "1"):
                proc = {"env": env, "service": service, "instance": instance}
                for name in (
                    "juanie_process_cpu_ratio",
                    "juanie_process_memory_bytes",
                    "juanie_process_restarts_total",
                    "up",
                ):
                    label_sets.append((name, proc))
    points = 24 * 3600 // 15
    started = time.perf_counter()
    for k in range(points):
        ts = T0 + 15 * k
        store.append_many(Sample(name, labels, float(k), ts) for name, labels in label_sets)
    ingest = time.perf_counter() - started
    held = store.memory_bytes()
    store.compact(T0 + 15 * points)
    after_compact = store.memory_bytes()
    snapshot = Path("/tmp") / f"juanie-observe-bench-{int(time.time())}.npz"
    store.snapshot(snapshot)
    size = snapshot.stat().st_size
    snapshot.unlink()
    return {
        "series": store.series_count(),
        "points_per_series": points,
        "ingest_seconds": round(ingest, 2),
        "memory_bytes_24h": held,
        "memory_mib_24h": round(held / 2**20, 2),
        "memory_bytes_after_compact": after_compact,
        "snapshot_bytes": size,
    }


def main() -> None:
    started = time.perf_counter()
    results = {
        "bench": "observe",
        "python": platform.python_version(),
        "ingest": bench_ingest(),
        "rule_evaluation": bench_rules(),
        "memory_microshop_24h": bench_memory(),
    }
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
