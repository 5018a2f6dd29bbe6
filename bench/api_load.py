"""API latency with 50 concurrent clients for 60 s against a real Juanie server, and the errors they saw.

The server is a real `juanie up --foreground` process (SQLite, the embedded default) over a store seeded like a
team's after some months (bench/_fleet.py: 100 projects × 3 environments, 1,000 pipeline runs, 1,200 deployments,
~9,000 events). The clients are Locust users (bench/_locust_api.py) with a developer's token who owns 50 of the
projects, so every list is filtered by visibility as it is in use:

* project list 19%, one project, its environments, runs, deployments and events 12.5% each, releases 6% — reads;
* a project's description (PATCH) and a secret's new value (PUT: encrypted, versioned, an event) 6% each — writes.

Two runs, each after a 5 s warm-up that is not counted:

* **clients** (the figure with the goal): 50 clients, each waiting 0.5–1.5 s between requests — people with the
  CLI and the UI open, and scripts polling, which is what a control plane serves. Goal: p99 ≤ 250 ms, the point
  past which a CLI command or a page update stops feeling immediate, and 0 errors.
* **saturation** (reported for reference): the same 50 clients with no pause at all, i.e. 50 requests always in
  flight; its throughput is the server's capacity on this machine and its p99 is mostly queueing.

Anchor: Kubernetes' API call latency SLO (sig-scalability): p99 ≤ 1 s for single-object calls, ≤ 30 s for
cluster-wide lists — the control plane Juanie sits beside.
The load generator shares the machine's CPUs with the server (and with whatever else runs: see the load average).

Usage (from the repository root): python bench/api_load.py [--users 50] [--seconds 60] [--saturation-seconds 60]
Writes bench/results/api_load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import machine_info, stamp  # noqa: E402
from _fleet import seed  # noqa: E402

from tests.server_support import start_server, stop_everything  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "api_load.json"
USERS = ROOT / "bench" / "_locust_api.py"
GOALS = {"p99_ms_max": 250.0, "errors_max": 0}
THINK = (0.5, 1.5)
WARMUP_SECONDS = 5.0


def _locust(host: str, token: str, projects: list[str], users: int, seconds: float,
            think: tuple[float, float] | None) -> dict[str, Any]:
    config = {"host": host, "token": token, "projects": projects, "users": users, "seconds": seconds,
              "think": list(think) if think else None, "warmup": WARMUP_SECONDS}
    done = subprocess.run([sys.executable, str(USERS), json.dumps(config)], capture_output=True, text=True,
                          timeout=seconds + 180, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"locust run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _server_errors(log: str) -> int:
    """Tracebacks the server logged during the run: a 5xx a client did not see would still show here."""
    return log.count("Traceback (most recent call last)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured time of each run")
    parser.add_argument("--saturation-seconds", type=float, default=60.0, help="0 skips the no-pause run")
    parser.add_argument("--projects", type=int, default=100, help="projects in the seeded store")
    args = parser.parse_args()
    if not 1 <= args.users <= 500 or not 5 <= args.seconds <= 3600 or not 10 <= args.projects <= 5000:
        parser.error("--users must be 1..500, --seconds 5..3600, --projects 10..5000")
    begun = time.monotonic()
    started_at = datetime.now(UTC).isoformat()
    machine = machine_info()
    base = Path(tempfile.mkdtemp(prefix="juanie-bench-api-"))
    result: dict[str, Any] = {}
    try:
        seeded_at = time.monotonic()
        fleet = seed(base / "data", projects=args.projects)
        seed_seconds = time.monotonic() - seeded_at
        server = start_server(base / "data", env={"JUANIE_ENGINE": "none"})
        try:
            log_before = len(server.log())
            print(f"clients: {args.users} users, {THINK[0]}-{THINK[1]} s between requests, {args.seconds:.0f} s",
                  flush=True)
            clients = _locust(server.url, fleet.developer_token, fleet.own, args.users, args.seconds, THINK)
            print(json.dumps(clients["total"]), flush=True)
            saturation = None
            if args.saturation_seconds > 0:
                print(f"saturation: {args.users} users, no pause, {args.saturation_seconds:.0f} s", flush=True)
                saturation = _locust(server.url, fleet.developer_token, fleet.own, args.users,
                                     args.saturation_seconds, None)
                print(json.dumps(saturation["total"]), flush=True)
            server_tracebacks = _server_errors(server.log()[log_before:])
            rss = round(psutil.Process(server.proc.pid).memory_info().rss / 2**20, 1)
        finally:
            leftovers = stop_everything(server)
        total = clients["total"]
        errors = int(total["failures"])
        result = {
            "p50_ms": total["p50_ms"],
            "p99_ms": total["p99_ms"],
            "rps": total["rps"],
            "errors": errors,
            "requests": total["requests"],
            "clients": clients,
            "saturation": saturation,
            "saturation_rps": None if saturation is None else saturation["total"]["rps"],
            "saturation_p99_ms": None if saturation is None else saturation["total"]["p99_ms"],
            "saturation_errors": None if saturation is None else saturation["total"]["failures"],
            "server_tracebacks": server_tracebacks,
            "server_rss_mib_after": rss,
            "goals": GOALS,
            "goal_met": {"p99_ms": total["p99_ms"] <= GOALS["p99_ms_max"], "errors": errors <= GOALS["errors_max"]},
            "anchor": "Kubernetes API call latency SLO: p99 ≤ 1 s (single object), ≤ 30 s (cluster-wide lists)",
            "method": {
                "server": "juanie up --foreground, SQLite (embedded default), engine none, one process",
                "store": f"{args.projects} projects × 3 environments, {fleet.runs} runs, {fleet.deployments} "
                         "deployments (bench/_fleet.py)",
                "clients": f"{args.users} Locust FastHttpUser clients with a developer's token (owner of "
                           f"{len(fleet.own)} projects), {THINK[0]}-{THINK[1]} s between requests",
                "saturation": f"the same {args.users} clients with no pause (50 requests always in flight)",
                "mix": "reads 87.5% (projects, project, environments, runs, deployments, releases, events); "
                       "writes 12.5% (PATCH project description, PUT secret)",
                "warm_up_seconds": WARMUP_SECONDS,
                "measured_seconds": args.seconds,
                "error": "any answer other than 2xx, or a connection error",
                "seed_seconds": round(seed_seconds, 1),
            },
            "leftover_processes": leftovers,
            "cpus": os.cpu_count(),
        }
    finally:
        shutil.rmtree(base, ignore_errors=True)
    result = stamp(result, started_at, begun, machine)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("p50_ms", "p99_ms", "rps", "errors", "saturation_rps",
                                              "saturation_p99_ms", "goal_met")}))


if __name__ == "__main__":
    main()
