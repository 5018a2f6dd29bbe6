"""How long a `git push` takes to become a Release, and to run live in dev, on a real Juanie server.

Each push is a real commit in a throwaway microshop repository followed by a signed GitHub-style webhook
(`X-Hub-Signature-256`, the payload GitHub sends on a push), exactly as a git host would deliver it:

* push -> release: a commit on `main`; the clock runs from the moment the webhook is sent until the release
  of that commit is listed by `GET /api/projects/microshop/releases` (polled every 0.2 s). The pipeline's caches
  are warm: one push is made and waited for before the measured ones. Median of 5.
* push -> live in dev: a commit on `feature/x` (which maps to dev, where deploys are automatic); the clock runs
  until dev's deployment of that release is `success` (the local engine runs it and the gateway routes to it).
  One warm-up push first (it starts dev's processes for the first time). Median of 3.

Usage (from the repository root): python bench/push_to_release.py [--releases 5] [--live 3]
Writes bench/results/push_to_release.json. All processes it starts are stopped at the end (checked with psutil).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import microshop_bench  # noqa: E402

from tests.server_support import Server, git  # noqa: E402
from tests.support import wait_until  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "push_to_release.json"
POLL_SECONDS = 0.2
ZERO = "0" * 40


# ---- pure: the webhook a git host sends ----------------------------------------------------------------------


def push_payload(clone_url: str, branch: str, before: str, after: str, message: str) -> bytes:
    """GitHub's push event body (the fields Juanie reads)."""
    return json.dumps(
        {
            "ref": f"refs/heads/{branch}",
            "before": before,
            "after": after,
            "repository": {"clone_url": clone_url, "html_url": clone_url},
            "pusher": {"name": "dev"},
            "commits": [{"id": after, "message": message, "author": {"name": "Dev", "email": "dev@example.com"}}],
        }
    ).encode()


def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    """Headers of a GitHub delivery, with the HMAC-SHA256 signature of the body."""
    return {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "Content-Type": "application/json",
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }


def summary(values: list[float]) -> dict[str, float | int | None]:
    return {
        "median": round(statistics.median(values), 2) if values else None,
        "min": round(min(values), 2) if values else None,
        "max": round(max(values), 2) if values else None,
        "n": len(values),
    }


# ---- edges ---------------------------------------------------------------------------------------------------


def _commit(source: Path, branch: str, n: int) -> tuple[str, str, str]:
    """A small real change on `branch`; returns (before, after, message). Leaves `main` checked out."""
    exists = (
        subprocess.run(
            ["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"], cwd=source, capture_output=True
        ).returncode
        == 0
    )
    before = git(source, "rev-parse", branch) if exists else ZERO
    if branch != "main":
        git(source, "checkout", "-q", *([branch] if exists else ["-b", branch]))
    message = f"docs: changelog entry {n} on {branch}"
    with (source / "CHANGELOG.md").open("a") as changelog:
        changelog.write(f"- change {n} on {branch}\n")
    git(source, "add", "-A")
    git(source, "commit", "-qm", message)
    after = git(source, "rev-parse", "HEAD")
    if branch != "main":
        git(source, "checkout", "-q", "main")
    return before, after, message


def _push(server: Server, source: Path, secret: str, branch: str, n: int) -> tuple[str, float, int]:
    """Commit and deliver the webhook; returns (commit, monotonic time the webhook was sent, run id)."""
    before, after, message = _commit(source, branch, n)
    body = push_payload(str(source), branch, before, after, message)
    sent = time.monotonic()
    response = server.api("POST", "/api/hooks/git", content=body, headers=signed_headers(secret, body), token="-")
    if response.status_code != 202:
        raise SystemExit(f"webhook refused: HTTP {response.status_code}: {response.text[:300]}")
    return after, sent, int(response.json()["run_id"])


def _poll(predicate: Any, timeout: float, what: str) -> Any:
    return wait_until(predicate, timeout=timeout, interval=POLL_SECONDS, message=what)


def _release_listed(server: Server, version: str) -> bool:
    items = server.ok("GET", "/api/projects/microshop/releases")["items"]
    return any(r["version"] == version for r in items)


def _dev_success(server: Server, version: str) -> dict[str, Any] | None:
    items = server.ok("GET", "/api/projects/microshop/deployments", params={"env": "dev"})["items"]
    dep = next((d for d in items if d["release"] == version), None)
    if dep is not None and dep["status"] in ("failed", "rolled_back", "cancelled"):
        raise SystemExit(f"dev deployment {dep['id']} of {version} ended {dep['status']}: {dep.get('message')}")
    return dep if dep is not None and dep["status"] == "success" else None


def _run_info(server: Server, run_id: int) -> dict[str, Any]:
    run = server.ok("GET", f"/api/runs/{run_id}")
    return {"run": run_id, "status": run["status"], "pipeline_seconds": run.get("duration_seconds")}


def _push_to_release(server: Server, source: Path, secret: str, n: int) -> dict[str, Any]:
    sha, sent, run_id = _push(server, source, secret, "main", n)
    _poll(lambda: _release_listed(server, sha[:12]), 600, f"release {sha[:12]}")
    took = time.monotonic() - sent
    return {"commit": sha[:12], "seconds": round(took, 2), **_run_info(server, run_id)}


def _push_to_live(server: Server, source: Path, secret: str, n: int) -> dict[str, Any]:
    sha, sent, run_id = _push(server, source, secret, "feature/x", n)
    _poll(lambda: _release_listed(server, sha[:12]), 600, f"release {sha[:12]}")
    released = time.monotonic() - sent
    dep = _poll(lambda: _dev_success(server, sha[:12]), 600, f"dev running {sha[:12]}")
    took = time.monotonic() - sent
    return {
        "commit": sha[:12],
        "seconds": round(took, 2),
        "release_seconds": round(released, 2),
        "deployment": dep["id"],
        "strategy": dep["strategy"],
        **_run_info(server, run_id),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=int, default=5, help="measured pushes to main (push -> release)")
    parser.add_argument("--live", type=int, default=3, help="measured pushes to feature/x (push -> live in dev)")
    args = parser.parse_args()
    if not 1 <= args.releases <= 50 or not 1 <= args.live <= 20:
        parser.error("--releases must be 1..50 and --live 1..20")
    with microshop_bench("juanie-bench-push-", "sk-bench-push") as bench:
        server, source = bench.server, bench.source
        secret = server.ok("POST", "/api/projects/microshop/webhook")["secret"]
        print("warming up ...", flush=True)
        warm_release = _push_to_release(server, source, secret, 0)
        releases = []
        for i in range(args.releases):
            releases.append(_push_to_release(server, source, secret, i + 1))
            print(f"push -> release {i + 1}: {releases[-1]}", flush=True)
        warm_live = _push_to_live(server, source, secret, 100)
        print(f"push -> live warm-up: {warm_live}", flush=True)
        lives = []
        for i in range(args.live):
            lives.append(_push_to_live(server, source, secret, 101 + i))
            print(f"push -> live {i + 1}: {lives[-1]}", flush=True)
        release_stats = summary([r["seconds"] for r in releases])
        live_stats = summary([r["seconds"] for r in lives])
        result = {
            "push_to_release_seconds": release_stats["median"],
            "push_to_live_dev_seconds": live_stats["median"],
            "push_to_release": release_stats,
            "push_to_live_dev": live_stats,
            "pipeline_seconds_median": summary(
                [float(r["pipeline_seconds"]) for r in releases if r.get("pipeline_seconds") is not None]
            )["median"],
            "method": {
                "push": "a real commit plus a signed GitHub push webhook (X-Hub-Signature-256) to /api/hooks/git",
                "release": "webhook sent -> release listed by GET /api/projects/microshop/releases",
                "live": "webhook for feature/x sent -> dev's deployment of that release is success",
                "poll_seconds": POLL_SECONDS,
                "cache": "warm: one push waited for before the measured pushes (and one before the dev pushes)",
                "stages": "build -> test -> quality -> package of examples/microshop (4 services)",
                "aggregation": "median",
            },
            "warm_up": {"release": warm_release, "live": warm_live},
            "release_runs": releases,
            "live_runs": lives,
        }
    bench.write_result(RESULTS, result)
    print(json.dumps({k: result[k] for k in ("push_to_release", "push_to_live_dev", "leftover_processes")}))


if __name__ == "__main__":
    main()
