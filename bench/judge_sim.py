"""Simulate canary rollouts second by second and measure what the judge and the canary planner achieve.

Each simulated run drives the real `plan_next_step` and `judge` with synthetic traffic: Poisson arrivals at
`rps`, each request going to the canary with probability = the current canary weight, errors Bernoulli per
request, latency lognormal bucketed like the gateway's histogram. The judge is asked every `tick` seconds
(the controller's check interval) with counts cumulative since the canary started.

Scenarios (numbers from the issue):
  a) healthy canaries (same error rate and latency as stable)  -> false_rollback_rate, promotion time
  b) error rate doubled, 0.5% -> 1% at 50 rps                   -> detection_rate: rolled back before being
                                                                   promoted and within 600 s of start
  c) bad releases, 10% and 20% errors                           -> seconds to the failing verdict, exposure
                                                                   (canary share x minutes until all-stable)

Usage: python bench/judge_sim.py [--healthy 1000] [--doubling 300] [--bad 100] [--workers 2]
Writes bench/results/judge_sim.json.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from juanie.delivery.judge import JudgeConfig, Sample, judge
from juanie.delivery.plan import Observation, Pause, Promote, RollBack, RolloutConfig, new_rollout
from juanie.delivery.strategies import plan_next_step

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)
RESULTS = Path(__file__).resolve().parent / "results" / "judge_sim.json"


@dataclass(frozen=True)
class Scenario:
    name: str
    runs: int
    rps: float = 50.0
    stable_error: float = 0.005
    canary_error: float = 0.005
    latency_median: float = 0.1
    latency_sigma: float = 0.5
    canary_latency_factor: float = 1.0
    horizon: float = 1200.0


@dataclass(frozen=True)
class RunResult:
    outcome: str  # "promoted" | "rolled_back" | "paused" | "undecided"
    seconds: float  # from the canary's start to the decision
    fail_seconds: float | None  # from the canary's first public traffic to the failing verdict
    exposure: float  # canary share x minutes until all traffic was back on stable (or promotion)


def _bucket_probs(median: float, sigma: float) -> np.ndarray:
    """Probability of each histogram bucket (non-cumulative) for lognormal latency."""
    cdf = [0.5 * (1 + math.erf((math.log(b) - math.log(median)) / (sigma * math.sqrt(2)))) for b in BOUNDS[:-1]]
    cdf.append(1.0)
    return np.diff(np.concatenate([[0.0], cdf]))


def _sample(requests: int, errors: int, buckets: np.ndarray) -> Sample:
    cumulative = np.cumsum(buckets)
    return Sample(requests, errors, tuple(zip(BOUNDS, (int(c) for c in cumulative), strict=True)))


def simulate(sc: Scenario, seed: int, jcfg: JudgeConfig, rcfg: RolloutConfig, tick: float) -> RunResult:
    """One rollout from StartCanary to promotion, rollback, pause or the horizon."""
    rng = np.random.default_rng(seed)
    probs_s = _bucket_probs(sc.latency_median, sc.latency_sigma)
    probs_c = _bucket_probs(sc.latency_median * sc.canary_latency_factor, sc.latency_sigma)
    req = np.zeros(2, dtype=np.int64)  # canary, stable (cumulative since canary start)
    err = np.zeros(2, dtype=np.int64)
    hist = np.zeros((2, len(BOUNDS)), dtype=np.int64)
    state = new_rollout("canary", "candidate", 0.0)
    t, exposure, first_traffic = 0.0, 0.0, None
    while t <= sc.horizon:
        verdict = None
        if state.canary_weight > 0 and req[0] > 0:
            verdict = judge(
                _sample(int(req[0]), int(err[0]), hist[0]), _sample(int(req[1]), int(err[1]), hist[1]), jcfg
            )
        obs = Observation(new_ready=1, new_desired=1, weights=state.weights, verdict=verdict)
        step = plan_next_step(state, obs, t, rcfg)
        state = step.state
        if isinstance(step, RollBack):
            fail_at = None if first_traffic is None else t - first_traffic
            return RunResult("rolled_back", t, fail_at, exposure)
        if isinstance(step, Promote):
            return RunResult("promoted", t, None, exposure)
        if isinstance(step, Pause):
            return RunResult("paused", t, None, exposure)
        w = state.canary_weight / 100.0
        if w > 0 and first_traffic is None:
            first_traffic = t
        exposure += w * tick / 60.0
        n = rng.poisson(sc.rps * tick)
        n_c = rng.binomial(n, w)
        n_s = n - n_c
        req += (n_c, n_s)
        err += (rng.binomial(n_c, sc.canary_error), rng.binomial(n_s, sc.stable_error))
        hist[0] += rng.multinomial(n_c, probs_c)
        hist[1] += rng.multinomial(n_s, probs_s)
        t += tick
    return RunResult("undecided", t, None, exposure)


def _batch(args: tuple[Scenario, list[int], JudgeConfig, RolloutConfig, float]) -> list[RunResult]:
    sc, seeds, jcfg, rcfg, tick = args
    return [simulate(sc, s, jcfg, rcfg, tick) for s in seeds]


def run_scenario(
    sc: Scenario, jcfg: JudgeConfig, rcfg: RolloutConfig, tick: float, seed: int, pool: ProcessPoolExecutor | None
) -> list[RunResult]:
    seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(sc.runs)]
    if pool is None:
        return _batch((sc, seeds, jcfg, rcfg, tick))
    chunks = [seeds[i::8] for i in range(8)]
    out: list[RunResult] = []
    for part in pool.map(_batch, [(sc, c, jcfg, rcfg, tick) for c in chunks]):
        out.extend(part)
    return out


def _median(values: list[float], digits: int = 2) -> float | None:
    return round(statistics.median(values), digits) if values else None


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--healthy", type=int, default=1000)
    ap.add_argument("--doubling", type=int, default=300)
    ap.add_argument("--bad", type=int, default=100)
    ap.add_argument("--tick", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    jcfg = JudgeConfig(max_error_rate=0.05, max_p99_seconds=1.0)
    rcfg = RolloutConfig(check_interval_seconds=args.tick)
    started = time.monotonic()
    pool = ProcessPoolExecutor(args.workers) if args.workers > 1 else None
    try:
        healthy = run_scenario(Scenario("healthy", args.healthy), jcfg, rcfg, args.tick, args.seed, pool)
        doubled = run_scenario(
            Scenario("doubling", args.doubling, canary_error=0.01), jcfg, rcfg, args.tick, args.seed + 1, pool
        )
        bad = {}
        for i, rate in enumerate((0.10, 0.20)):
            sc = Scenario(f"bad{rate}", args.bad, canary_error=rate, horizon=600)
            bad[rate] = run_scenario(sc, jcfg, rcfg, args.tick, args.seed + 2 + i, pool)
    finally:
        if pool is not None:
            pool.shutdown()
    false_rb = sum(r.outcome == "rolled_back" for r in healthy) / len(healthy)
    detected = sum(r.outcome == "rolled_back" and r.seconds <= 600 for r in doubled) / len(doubled)
    bad_secs = [r.fail_seconds for rs in bad.values() for r in rs if r.fail_seconds is not None]
    result: dict[str, object] = {
        "false_rollback_rate": round(false_rb, 4),
        "detection_rate": round(detected, 4),
        "runs": {"healthy": len(healthy), "doubling": len(doubled), **{f"bad_{k}": len(v) for k, v in bad.items()}},
        "bad_release_detection_seconds_median": _median(bad_secs),
        "bad_release_by_error_rate": {
            str(k): {
                "detection_seconds_median": _median([r.fail_seconds for r in v if r.fail_seconds is not None]),
                "detection_seconds_max": max((r.fail_seconds for r in v if r.fail_seconds is not None), default=None),
                "exposure_median_share_minutes": _median([r.exposure for r in v], 4),
                "stopped_rate": sum(r.outcome == "rolled_back" for r in v) / len(v),
            }
            for k, v in bad.items()
        },
        "exposure_median": _median([r.exposure for rs in bad.values() for r in rs], 4),
        "healthy_promotion_seconds_median": _median([r.seconds for r in healthy if r.outcome == "promoted"]),
        "healthy_promotion_seconds_p95": (
            round(float(np.percentile([r.seconds for r in healthy if r.outcome == "promoted"], 95)), 2)
            if any(r.outcome == "promoted" for r in healthy)
            else None
        ),
        "healthy_outcomes": {
            o: sum(r.outcome == o for r in healthy) for o in ("promoted", "rolled_back", "paused", "undecided")
        },
        "doubling_outcomes": {
            o: sum(r.outcome == o for r in doubled) for o in ("promoted", "rolled_back", "paused", "undecided")
        },
        "doubling_detection_seconds_median": _median([r.seconds for r in doubled if r.outcome == "rolled_back"]),
        "goals": {
            "false_rollback_rate": "<= 0.01",
            "detection_rate": ">= 0.90 (0.5% -> 1% errors at 50 rps, rolled back before promotion within 600 s)",
            "bad_release_detection_seconds_median": "seconds (>= 10% errors)",
            "healthy_promotion_seconds_median": "<= 600 with steps 5 -> 25 -> 50 -> 100",
        },
        "config": {
            "judge": {k: v for k, v in asdict(jcfg).items()},
            "rollout": {
                "steps": [asdict(s) for s in rcfg.steps],
                "check_interval_seconds": rcfg.check_interval_seconds,
                "max_extension_seconds": rcfg.max_extension_seconds,
                "on_inconclusive": rcfg.on_inconclusive,
            },
            "traffic": asdict(Scenario("healthy", 0)),
            "tick_seconds": args.tick,
            "seed": args.seed,
        },
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    out = main()
    json.dump({k: out[k] for k in list(out)[:9]}, sys.stdout, indent=2)
    print()
