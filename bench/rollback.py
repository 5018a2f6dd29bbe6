"""How fast a bad canary is rolled back, how many users it touches, and how long a healthy canary takes to promote.

Everything is measured from the outside, on a real Juanie server with the local engine and its gateway:

* a steady load (~40 rps) goes through the gateway to `microshop-staging/payment/`; every answer is recorded
  with its time, status and the `x-juanie-version` header the gateway adds, so the load sees which version
  served it;
* the deployment (`GET /api/deployments/{id}`: weights, status, verdicts) and the environment
  (`GET .../environments/staging/status`: the canary workloads) are polled every 0.2 s.

A bad release (`FAILURE_RATE = 0.2` in `microshop/payment.py`, i.e. 20% errors) is deployed to staging N times,
alternating with healthy canaries of a second good release, all on one server and one project:

* `rollback_seconds`: from the canary's first public traffic (the first polled weight > 0 or the first answer
  from the bad version, whichever is earlier) until the polled weights are back to stable 100 *and* no canary
  workload is ready; the median over the runs;
* `fail_verdict_seconds`: from the same start to the judge's first failing verdict (its own timestamp);
* `exposure`: canary share x minutes until all-stable, integrated from the polled weights (the share of
  answers the load actually got from the bad version is reported beside it);
* `promotion_seconds`: from a healthy canary's first public traffic until its deployment is `success`, with the
  staging steps of the example's juanie.yaml (10% 30s -> 50% 30s -> 100%); `--default-steps` adds one run with
  `juanie.delivery.plan.DEFAULT_STEPS` (5% 30s -> 25% 60s -> 50% 420s -> 100%, ~10 minutes).

Usage (from the repository root): python bench/rollback.py [--runs 3] [--rps 40] [--default-steps]
Writes bench/results/rollback.json. All processes it starts are stopped at the end (checked with psutil).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import microshop_bench  # noqa: E402

from juanie.delivery.plan import DEFAULT_STEPS  # noqa: E402
from tests.delivery_support import deploy, release  # noqa: E402
from tests.load_support import Answer, Load  # noqa: E402
from tests.server_support import Server, git  # noqa: E402
from tests.support import wait_until  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "rollback.json"
POLL_SECONDS = 0.2
EXAMPLE_STEPS = """        - {weight: 10, pause: 30s}
        - {weight: 50, pause: 30s}"""
GOALS = {"rollback_seconds_max": 30.0, "exposure_max": 0.05, "promotion_seconds_max": 600.0}
ANCHORS = {
    "flagger_tutorial": {
        "rollback_seconds": 360.0,
        "exposure": 0.6,
        "note": "Flagger's canary tutorial: 5 failed checks, 1 min apart, at 10-50% weight",
    },
    "argo_rollouts_example": {
        "exposure": 9.0,
        "note": "Argo Rollouts' canary example: 20% -> 40% -> ... with pauses before analysis fails",
    },
}


# ---- pure analysis of what was observed ---------------------------------------------------------------------


@dataclass(frozen=True)
class Poll:
    """One look at the deployment and the environment, at monotonic time `t`."""

    t: float
    canary_weight: int | None  # None: the rollout has not set weights yet
    canary_ready: int  # ready replicas across the canary workloads
    status: str


def canary_start(polls: list[Poll], answers: list[Answer], version: str) -> float | None:
    """When the canary first took public traffic: the earlier of the first weight > 0 and the first answer."""
    times = [p.t for p in polls if (p.canary_weight or 0) > 0][:1]
    times += [a.t for a in answers if a.version == version][:1]
    return min(times) if times else None


def all_stable_at(polls: list[Poll], after: float) -> float | None:
    """The first poll after `after` from which on the weights stay at stable 100 and no canary replica is ready."""
    found: float | None = None
    for poll in polls:
        if poll.t < after:
            continue
        stable = (poll.canary_weight or 0) == 0 and poll.canary_ready == 0
        if stable and found is None:
            found = poll.t
        elif not stable:
            found = None
    return found


def exposure_from_weights(polls: list[Poll], start: float, end: float) -> float:
    """Canary share x minutes between `start` and `end`, each poll's weight held until the next poll."""
    total = 0.0
    for current, following in itertools.pairwise(polls):
        lo, hi = max(current.t, start), min(following.t, end)
        if hi > lo:
            total += (current.canary_weight or 0) / 100 * (hi - lo)
    return total / 60


def exposure_from_answers(answers: list[Answer], start: float, end: float, version: str) -> tuple[float, int, int]:
    """(share of answers from `version` x minutes, answers from it, all answers) between `start` and `end`."""
    window = [a for a in answers if start <= a.t <= end]
    hits = sum(1 for a in window if a.version == version)
    share = hits / len(window) if window else 0.0
    return share * (end - start) / 60, hits, len(window)


def first_fail_verdict(verdicts: list[dict[str, Any]]) -> float | None:
    """The timestamp (epoch seconds) of the judge's first failing verdict, if it gave one."""
    return next((float(v["at"]) for v in verdicts if v.get("outcome") == "fail"), None)


def median(values: list[float], digits: int = 2) -> float | None:
    return round(statistics.median(values), digits) if values else None


# ---- the edges: load, polling, server ------------------------------------------------------------------------


def _commit_change(source: Path, path: str, old: str, new: str, message: str) -> None:
    file = source / path
    text = file.read_text()
    if old not in text:
        raise SystemExit(f"{path}: expected to find {old!r} to change")
    file.write_text(text.replace(old, new))
    git(source, "commit", "-qam", message)


def _canary_ready(status: dict[str, Any]) -> int:
    return sum(int(w.get("ready") or 0) for w in status.get("workloads", []) if w["name"].endswith("-canary"))


def _watch(server: Server, dep_id: int, timeout: float) -> tuple[list[Poll], dict[str, Any]]:
    """Poll the deployment and the environment every 0.2 s until the deployment ends and the canary is gone."""
    polls: list[Poll] = []
    deadline = time.monotonic() + timeout
    final: dict[str, Any] = {}
    while time.monotonic() < deadline:
        started = time.monotonic()
        dep = server.ok("GET", f"/api/deployments/{dep_id}")
        status = server.ok("GET", "/api/projects/microshop/environments/staging/status")
        weights = dep.get("weights") or None
        poll = Poll(
            started, None if weights is None else int(weights.get("canary", 0)), _canary_ready(status), dep["status"]
        )
        polls.append(poll)
        if dep["status"] in ("success", "rolled_back", "cancelled", "failed") and poll.canary_ready == 0:
            final = dep
            if dep["status"] != "failed":
                break
        time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - started)))
    else:
        raise SystemExit(f"deployment {dep_id} did not end within {timeout:.0f}s: last poll {polls[-1]}")
    return polls, final


def _bad_run(server: Server, load: Load, bad: str, clock_offset: float) -> dict[str, Any]:
    requested = time.monotonic()
    dep = deploy(server, "staging", bad, approve=True)
    polls, final = _watch(server, dep["id"], timeout=600)
    answers = load.since(requested)
    start = canary_start(polls, answers, bad)
    if start is None:
        return {"deployment": dep["id"], "status": final.get("status"), "error": "the canary never took traffic"}
    end = all_stable_at(polls, start)
    fail_at = first_fail_verdict(final.get("verdicts", []))
    last_bad = max((a.t for a in answers if a.version == bad), default=None)
    observed, hits, total = exposure_from_answers(answers, start, end or polls[-1].t, bad)
    return {
        "deployment": dep["id"],
        "status": final.get("status"),
        "rollback_seconds": None if end is None else round(end - start, 2),
        "rollback_seconds_from_deploy_request": None if end is None else round(end - requested, 2),
        "canary_start_after_deploy_request_seconds": round(start - requested, 2),
        "fail_verdict_seconds": None if fail_at is None else round(fail_at - clock_offset - start, 2),
        "last_bad_answer_seconds": None if last_bad is None else round(last_bad - start, 2),
        "max_canary_weight": max((p.canary_weight or 0) for p in polls),
        "exposure": round(exposure_from_weights(polls, start, end or polls[-1].t), 4),
        "exposure_observed": round(observed, 4),
        "answers_from_bad_release": hits,
        "answers_in_window": total,
        "errors_in_window": sum(
            1 for a in answers if start <= a.t <= (end or polls[-1].t) and not a.outcome.startswith("2")
        ),
        "verdict": (final.get("verdicts") or [{}])[-1].get("sentence", ""),
        "polls": len(polls),
    }


def _healthy_run(server: Server, load: Load, version: str, timeout: float = 600) -> dict[str, Any]:
    requested = time.monotonic()
    dep = deploy(server, "staging", version, approve=True)
    polls, final = _watch(server, dep["id"], timeout=timeout)
    answers = load.since(requested)
    start = canary_start(polls, answers, version)
    done_at = next((p.t for p in polls if p.status == "success"), None)
    weights = sorted({p.canary_weight for p in polls if p.canary_weight})
    return {
        "deployment": dep["id"],
        "release": version,
        "status": final.get("status"),
        "promotion_seconds": None if start is None or done_at is None else round(done_at - start, 2),
        "promotion_seconds_from_deploy_request": None if done_at is None else round(done_at - requested, 2),
        "weights_seen": weights,
        "failed_answers": sum(1 for a in answers if a.t <= (done_at or polls[-1].t) and not a.outcome.startswith("2")),
    }


def _staging_runs(server: Server, release: str) -> bool:
    status = server.ok("GET", "/api/projects/microshop/environments/staging/status")
    return (
        bool(status["workloads"])
        and {w["version"] for w in status["workloads"]} == {release}
        and not any(w["name"].endswith("-canary") for w in status["workloads"])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="bad-release runs (each followed by a healthy canary)")
    parser.add_argument("--rps", type=float, default=40.0, help="steady load through the gateway")
    parser.add_argument(
        "--default-steps",
        action="store_true",
        help="also promote one healthy canary with DEFAULT_STEPS (adds ~10 minutes)",
    )
    args = parser.parse_args()
    if not 1 <= args.runs <= 20 or not 1 <= args.rps <= 500:
        parser.error("--runs must be 1..20 and --rps 1..500")
    with microshop_bench("juanie-bench-rollback-", "sk-bench-rollback") as bench:
        server, source, gateway_port = bench.server, bench.source, bench.gateway_port
        clock_offset = time.time() - time.monotonic()
        print("building releases ...", flush=True)
        good = release(server)
        _commit_change(
            source,
            "microshop/payment.py",
            "FAILURE_RATE = 0.0\n",
            "FAILURE_RATE = 0.2\n",
            "payment: switch provider client",
        )
        bad = release(server)
        _commit_change(
            source,
            "microshop/payment.py",
            "FAILURE_RATE = 0.2\n",
            "FAILURE_RATE = 0.0\n",
            "payment: back to the old client",
        )
        good2 = release(server)
        print(f"releases: good {good}, bad {bad}, good2 {good2}", flush=True)
        first = deploy(server, "staging", good, approve=True)
        _watch(server, first["id"], timeout=300)
        wait_until(lambda: _staging_runs(server, good), timeout=120, interval=0.5, message="staging on good")
        bad_runs: list[dict[str, Any]] = []
        healthy_runs: list[dict[str, Any]] = []
        stable, other = good, good2
        with Load(
            f"http://127.0.0.1:{gateway_port}/microshop-staging/payment/", args.rps, max_seconds=3600, keep_answers=True
        ) as load:
            wait_until(lambda: len(load.answers) > args.rps, timeout=60, message="load running")
            for i in range(args.runs):
                wait_until(
                    lambda s=stable: _staging_runs(server, s), timeout=120, interval=0.5, message=f"staging on {stable}"
                )
                bad_runs.append(_bad_run(server, load, bad, clock_offset))
                print(f"run {i + 1} bad: {bad_runs[-1]}", flush=True)
                wait_until(
                    lambda s=stable: _staging_runs(server, s),
                    timeout=120,
                    interval=0.5,
                    message=f"staging back on {stable}",
                )
                healthy_runs.append(_healthy_run(server, load, other))
                print(f"run {i + 1} healthy: {healthy_runs[-1]}", flush=True)
                if healthy_runs[-1]["status"] == "success":
                    stable, other = other, stable
            default_run = None
            if args.default_steps:
                steps = "\n".join(
                    f"        - {{weight: {s.weight}, pause: {int(s.pause_seconds)}s}}" for s in DEFAULT_STEPS
                )
                _commit_change(source, "juanie.yaml", EXAMPLE_STEPS, steps, "ci: default canary steps")
                slow = release(server)
                default_run = _healthy_run(server, load, slow, timeout=1500)
                print(f"default steps: {default_run}", flush=True)
            load_outcomes = dict(load.outcomes)
        rollback = median([r["rollback_seconds"] for r in bad_runs if r.get("rollback_seconds") is not None])
        exposure = median([r["exposure"] for r in bad_runs if r.get("exposure") is not None], 4)
        promotion = median([r["promotion_seconds"] for r in healthy_runs if r.get("promotion_seconds") is not None])
        rolled_back = sum(1 for r in bad_runs if r.get("status") == "rolled_back")
        promoted = sum(1 for r in healthy_runs if r.get("status") == "success")
        result = {
            "rollback_seconds": rollback,
            "fail_verdict_seconds": median(
                [r["fail_verdict_seconds"] for r in bad_runs if r.get("fail_verdict_seconds") is not None]
            ),
            "exposure": exposure,
            "exposure_observed": median([r["exposure_observed"] for r in bad_runs if "exposure_observed" in r], 4),
            "promotion_seconds": promotion,
            "promotion_steps": "10% 30s -> 50% 30s -> 100% (staging in examples/microshop/juanie.yaml)",
            "promotion_seconds_default_steps": None if default_run is None else default_run["promotion_seconds"],
            "default_steps": [{"weight": s.weight, "pause_seconds": s.pause_seconds} for s in DEFAULT_STEPS],
            "default_steps_run": default_run,
            "runs": args.runs,
            "bad_rolled_back": rolled_back,
            "healthy_promoted": promoted,
            "goals": GOALS,
            "goal_met": {
                "rollback_seconds": rollback is not None
                and rollback <= GOALS["rollback_seconds_max"]
                and rolled_back == args.runs,
                "exposure": exposure is not None and exposure <= GOALS["exposure_max"],
                "promotion_seconds": promotion is not None
                and promotion <= GOALS["promotion_seconds_max"]
                and promoted == args.runs,
            },
            "anchors": ANCHORS,
            "method": {
                "load": f"{args.rps:g} rps GET /microshop-staging/payment/ through the gateway; every answer "
                "recorded with the x-juanie-version header",
                "bad_release": "FAILURE_RATE = 0.2 in microshop/payment.py (20% of GET / answer 500)",
                "start": "the canary's first public traffic: first polled weight > 0 or first answer from the bad "
                "version, whichever is earlier",
                "end": "first poll from which on weights are stable 100 and no canary workload is ready",
                "poll_seconds": POLL_SECONDS,
                "aggregation": "median over runs",
            },
            "bad_runs": bad_runs,
            "healthy_runs": healthy_runs,
            "load_outcomes": load_outcomes,
            "releases": {"good": good, "bad": bad, "good2": good2},
        }
    bench.write_result(RESULTS, result)
    print(
        json.dumps(
            {
                k: result[k]
                for k in (
                    "rollback_seconds",
                    "fail_verdict_seconds",
                    "exposure",
                    "promotion_seconds",
                    "goal_met",
                    "leftover_processes",
                )
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
