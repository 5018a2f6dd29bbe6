"""What the sandbox costs: a process start and a whole pipeline run, with and without it, side by side in one run.

* Process start: the time from starting a replica's command until it has run and exited (`/bin/true`, so the
  figure is the launch itself), through the same jail the local engine builds (bubblewrap with the project's uid,
  its release read-only, its data directory writable, cgroup limits where the host has them) against a plain
  `subprocess`. Median of 50 alternating starts each. Goal: at most 50 ms more per start.
* Pipeline run: microshop's own pipeline as the server runs it (a fresh checkout; the build stage makes the release
  directory with its virtualenv and `pip install`, with a warm pip cache; the test stage runs its pytest suite),
  with `JUANIE_SANDBOX=bwrap` and `off` on the same executor settings, alternating. One warm-up run each, then the
  median of 3. Goal: at most 10 % slower.

Usage (from the repository root): python bench/sandbox_cost.py [--starts 50] [--runs 3]
Writes bench/results/sandbox_cost.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import machine_info  # noqa: E402

from juanie.pipeline.executor import Executor  # noqa: E402
from juanie.pipeline.from_spec import pipeline_for  # noqa: E402
from juanie.sandbox import Limits, Sandbox  # noqa: E402
from juanie.spec import load_spec  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "sandbox_cost.json"
MICROSHOP = ROOT / "examples" / "microshop"
START_GOAL_MS = 50.0
RUN_GOAL_RATIO = 1.10


def _start_once(argv: list[str], cwd: Path) -> float:
    began = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - began) * 1000


def process_starts(root: Path, n: int) -> dict[str, Any]:
    sandbox = Sandbox(hidden=(root,))
    release, data = root / "release", root / "instance"
    release.mkdir(parents=True)
    sandbox.own(data, "bench")
    prepared = sandbox.prepare(["/bin/true"], project="bench", cwd=release, writable=(data,), readable=(release,),
                               die_with_parent=False, limits=Limits(cpu=0.5, memory=256 * 1024**2),
                               limit_name="bench.start")  # fmt: skip
    plain, jailed = [], []
    for _ in range(n):
        plain.append(_start_once(["/bin/true"], release))
        jailed.append(_start_once(prepared.full, release))
    sandbox.release(prepared.limits)
    delta = statistics.median(jailed) - statistics.median(plain)
    return {
        "plain_ms_median": round(statistics.median(plain), 2),
        "sandboxed_ms_median": round(statistics.median(jailed), 2),
        "delta_ms": round(delta, 2),
        "goal_delta_ms": START_GOAL_MS,
        "met": delta <= START_GOAL_MS,
        "limits": prepared.limits.describe(),
        "starts": n,
    }


async def _run(executor: Executor, source: Path, releases: Path, project: str, sha: str) -> float:
    spec = load_spec(source / "juanie.yaml")
    pipeline = pipeline_for(spec, project=project, sha=sha, releases_dir=releases, python=sys.executable)
    began = time.perf_counter()
    result = await executor.run(sha, source, pipeline, project=project)
    if result.state != "succeeded":
        raise SystemExit(f"pipeline {sha} ({project}) ended {result.state}: {result.error or result.steps}")
    return time.perf_counter() - began


async def pipeline_runs(root: Path, rounds: int) -> dict[str, Any]:
    source = root / "microshop"
    shutil.copytree(MICROSHOP, source, ignore=shutil.ignore_patterns(".venv", "__pycache__", "*.db", ".pytest_cache"))
    releases = root / "releases"
    modes = {"bwrap": Sandbox(hidden=(root / "data",)), "off": Sandbox("off")}
    executors = {m: Executor(root / "data" / "ws", root / "data" / "cache", root / "data" / "art", sandbox=s,
                             releases_root=releases) for m, s in modes.items()}  # fmt: skip
    times: dict[str, list[float]] = {m: [] for m in modes}
    sha = iter(f"{i:040x}" for i in range(1, 1000))
    for mode in modes:  # warm-up: fills each project's pip cache
        await _run(executors[mode], source, releases, f"bench-{mode}", next(sha))
    for _ in range(rounds):
        for mode in modes:
            times[mode].append(await _run(executors[mode], source, releases, f"bench-{mode}", next(sha)))
    on, off = statistics.median(times["bwrap"]), statistics.median(times["off"])
    return {
        "sandboxed_seconds_median": round(on, 2),
        "unsandboxed_seconds_median": round(off, 2),
        "ratio": round(on / off, 3),
        "goal_ratio": RUN_GOAL_RATIO,
        "met": on / off <= RUN_GOAL_RATIO,
        "runs_each": rounds,
        "seconds": {m: [round(t, 2) for t in ts] for m, ts in times.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--starts", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="juanie-sandbox-bench-"))
    try:
        result = {
            "process_start": process_starts(root / "starts", args.starts),
            "pipeline_run": asyncio.run(pipeline_runs(root / "runs", args.runs)),
            "machine": machine_info(),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    return 0 if result["process_start"]["met"] and result["pipeline_run"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
