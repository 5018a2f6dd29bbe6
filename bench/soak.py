"""The server's memory over a 10-minute soak at 100 requests/s: does it grow, and how fast (a leak shows as a slope).

A real Juanie server (`juanie up --foreground`, SQLite, the local engine and its gateway) over a seeded store
(bench/_fleet.py: 100 projects with history) plus microshop, registered, built by its real pipeline and live in
dev. Then, for `--minutes` (10 by default), a steady load of `--rps` (100) GETs a second, from the bounded load
loops the tests use (tests/load_support.py):

* 70% API reads: the project list, a project, its deployments and runs, events (a developer's token, so
  visibility is filtered), and microshop's dev status (the admin's token: the engine is asked each time);
* 30% through the gateway to microshop's payment service in dev (the gateway measures every request, and the
  server collects those metrics into its built-in store every few seconds).

The server process's RSS (psutil) is sampled every `SAMPLE_SECONDS`, with the gateway's beside it. Reported: RSS at
start and end of the load, growth, and the slope in MiB per hour from a least-squares fit (scipy.stats.linregress)
over the second half, after warm-up (caches, connection pools and the metrics store's first chunks fill in the
first minutes).

Goals: slope ≤ 20 MiB/h and 0 errors. Why 20: Python's allocator moves RSS in steps of ~1 MiB, so over a 5-minute
fit window anything under ~12 MiB/h is indistinguishable from those steps, while a leak of even 60 bytes per request
at 100 requests/s is 21 MiB/h and anything a request keeps (a response, a session, a log record: kilobytes) is
hundreds. The built-in metrics store grows by design until its retention is full (about 38 MiB for microshop's
24 h, bench/observe_bench.py), i.e. ~1.6 MiB/h: well under the goal.

Usage (from the repository root): python bench/soak.py [--minutes 10] [--rps 100]
Writes bench/results/soak.json. All processes it starts are stopped at the end (checked with psutil).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import machine_info, stamp  # noqa: E402
from _fleet import seed  # noqa: E402

from tests.delivery_support import deploy, final, release  # noqa: E402
from tests.load_support import Load  # noqa: E402
from tests.server_support import microshop_source, register_microshop, start_server, stop_everything  # noqa: E402
from tests.support import free_port, wait_until  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "soak.json"
SAMPLE_SECONDS = 5.0
GOALS = {"slope_mib_per_hour_max": 20.0, "errors_max": 0}
MIB = 2**20


# ---- pure ------------------------------------------------------------------------------------------------------


def fit(samples: list[tuple[float, float]]) -> dict[str, float | None]:
    """Least-squares line through (seconds, MiB) over the second half of the samples: slope in MiB/h, with its
    standard error and r²."""
    half = samples[len(samples) // 2:]
    if len(half) < 3:
        return {"slope_mib_per_hour": None, "stderr_mib_per_hour": None, "r2": None, "points": len(half)}
    line = stats.linregress([t for t, _ in half], [m for _, m in half])
    return {"slope_mib_per_hour": round(float(line.slope) * 3600, 2),
            "stderr_mib_per_hour": round(float(line.stderr) * 3600, 2), "r2": round(float(line.rvalue) ** 2, 3),
            "points": len(half)}


def plan(rps: float, api: dict[str, str], gateway: str) -> list[tuple[str, str, float]]:
    """(name, url, rps) per load loop: 70% of `rps` over the API reads, 30% through the gateway. Pure."""
    shares = {"projects": 15, "project": 10, "deployments": 10, "runs": 10, "events": 10, "status": 10}
    reads = sum(shares.values())
    loops = [(name, api[name], rps * 0.7 * share / reads) for name, share in shares.items()]
    return [*loops, ("gateway", gateway, rps * 0.3)]


# ---- edges -----------------------------------------------------------------------------------------------------


class Sampler:
    """RSS of the server (and the gateway) every SAMPLE_SECONDS, in a thread, until stopped."""

    def __init__(self, server_pid: int, gateway_pid: int | None) -> None:
        self.server = psutil.Process(server_pid)
        self.gateway = psutil.Process(gateway_pid) if gateway_pid else None
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.monotonic()

    def __enter__(self) -> Sampler:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(SAMPLE_SECONDS * 2)
        self._sample()

    def _sample(self) -> None:
        row = {"t": round(time.monotonic() - self._t0, 2), "server_mib": self.server.memory_info().rss / MIB}
        if self.gateway is not None:
            try:
                row["gateway_mib"] = self.gateway.memory_info().rss / MIB
            except psutil.Error:
                pass
        self.samples.append(row)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(SAMPLE_SECONDS)


def _gateway_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "gateway" / "gateway.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _series(samples: list[dict[str, float]], key: str) -> list[tuple[float, float]]:
    return [(s["t"], s[key]) for s in samples if key in s]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak")
    parser.add_argument("--rps", type=float, default=100.0, help="requests per second, all loops together")
    args = parser.parse_args()
    if not 0.5 <= args.minutes <= 240 or not 1 <= args.rps <= 1000:
        parser.error("--minutes must be 0.5..240 and --rps 1..1000")
    begun = time.monotonic()
    started_at = datetime.now(UTC).isoformat()
    machine = machine_info()
    base = Path(tempfile.mkdtemp(prefix="juanie-bench-soak-"))
    data = base / "data"
    result: dict[str, Any] = {}
    fleet = seed(data, projects=100)
    source = microshop_source(base / "source")
    gateway_port = free_port()
    server = start_server(data, env={"JUANIE_ENGINE": "local", "JUANIE_GATEWAY_PORT": str(gateway_port),
                                     "JUANIE_GATEWAY_ADMIN_PORT": str(free_port())})
    try:
        register_microshop(server, source, "sk-bench-soak")
        print("building and deploying microshop to dev ...", flush=True)
        version = release(server)
        done = final(server, deploy(server, "dev", version)["id"], timeout=300)
        if done["status"] != "success":
            raise SystemExit(f"microshop's dev deployment ended {done['status']}: {done.get('status_message')}")
        gateway = f"http://127.0.0.1:{gateway_port}/microshop-dev/payment/"
        wait_until(lambda: httpx.get(gateway).status_code == 200, timeout=60,
                   message="microshop's payment answering through the gateway")
        own = fleet.own
        api = {
            "projects": f"{server.url}/api/projects",
            "project": f"{server.url}/api/projects/{own[1]}",
            "deployments": f"{server.url}/api/projects/{own[2]}/deployments",
            "runs": f"{server.url}/api/projects/{own[3]}/runs",
            "events": f"{server.url}/api/events?project={own[4]}&limit=50",
            "status": f"{server.url}/api/projects/microshop/environments/dev/status",
        }
        headers = {"gateway": {}, "status": {"Authorization": f"Bearer {server.token}"}}
        developer = {"Authorization": f"Bearer {fleet.developer_token}"}
        seconds = args.minutes * 60
        names, loops = [], []
        for name, url, rps in plan(args.rps, api, gateway):
            names.append(name)
            loops.append(Load(url, rps, max_seconds=seconds + 60, headers=headers.get(name, developer)))
        print(f"soak: {args.rps:.0f} requests/s for {args.minutes:g} min ...", flush=True)
        with Sampler(server.proc.pid, _gateway_pid(data)) as sampler:
            started = time.monotonic()
            for load in loops:
                load.__enter__()
            try:
                while time.monotonic() - started < seconds:
                    time.sleep(min(30.0, seconds - (time.monotonic() - started)))
                    last = sampler.samples[-1] if sampler.samples else {}
                    sent = sum(sum(load.outcomes.values()) for load in loops)
                    print(f"  {time.monotonic() - started:5.0f}s server {last.get('server_mib', 0):.1f} MiB, "
                          f"{sent} answers, {sum(load.failed for load in loops)} failed", flush=True)
            finally:
                for load in loops:
                    load.__exit__(None, None, None)
            elapsed = time.monotonic() - started
        server_log = server.log()
    finally:
        leftovers = stop_everything(server)
    samples = sampler.samples
    server_fit = fit(_series(samples, "server_mib"))
    gateway_fit = fit(_series(samples, "gateway_mib"))
    outcomes = {name: dict(load.outcomes) for name, load in zip(names, loops, strict=True)}
    answers = sum(sum(load.outcomes.values()) for load in loops)
    errors = sum(load.failed for load in loops)
    start_mib, end_mib = samples[0]["server_mib"], samples[-1]["server_mib"]
    slope = server_fit["slope_mib_per_hour"]
    result = {
        "start_rss_mib": round(start_mib, 1),
        "end_rss_mib": round(end_mib, 1),
        "growth_mib": round(end_mib - start_mib, 1),
        "slope_mib_per_hour": slope,
        "slope_stderr_mib_per_hour": server_fit["stderr_mib_per_hour"],
        "fit": server_fit,
        "max_rss_mib": round(max(s["server_mib"] for s in samples), 1),
        "errors": errors,
        "answers": answers,
        "achieved_rps": round(answers / elapsed, 1),
        "minutes": args.minutes,
        "target_rps": args.rps,
        "outcomes": outcomes,
        "gateway": {"start_rss_mib": round(samples[0].get("gateway_mib", 0), 1),
                    "end_rss_mib": round(samples[-1].get("gateway_mib", 0), 1), "fit": gateway_fit},
        "server_tracebacks": server_log.count("Traceback (most recent call last)"),
        "goals": GOALS,
        "goal_met": {"slope": slope is not None and slope <= GOALS["slope_mib_per_hour_max"],
                     "errors": errors <= GOALS["errors_max"]},
        "samples": [{k: round(v, 2) for k, v in s.items()} for s in samples],
        "method": {
            "server": "juanie up --foreground, SQLite, local engine + gateway; microshop live in dev",
            "store": f"100 seeded projects ({fleet.runs} runs, {fleet.deployments} deployments) + microshop",
            "load": "tests/load_support.Load loops: 70% API reads (developer's token; admin for microshop's status), "
                    "30% GET /microshop-dev/payment/ through the gateway",
            "sample_seconds": SAMPLE_SECONDS,
            "fit": "scipy.stats.linregress of server RSS (MiB) on time over the second half of the samples",
            "error": "any answer other than 2xx, or a connection error",
        },
        "leftover_processes": leftovers,
    }
    shutil.rmtree(base, ignore_errors=True)
    result = stamp(result, started_at, begun, machine)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("start_rss_mib", "end_rss_mib", "growth_mib", "slope_mib_per_hour",
                                              "errors", "achieved_rps", "leftover_processes")}))


if __name__ == "__main__":
    main()
