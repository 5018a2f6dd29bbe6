"""Server time of the UI's home and project pages with 1,000 projects × 3 environments in the store.

Writes bench/results/ui_pages.json with the goal (median ≤ 200 ms) beside each measurement. The store is
filled directly through the store functions (one transaction), then each page is requested in-process through
the real app (middleware, session check, queries, template rendering): no network, so it is the server's time.
Bounded: a fixed number of requests per page (well under a minute in total).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from _common import machine_info
from fastapi.testclient import TestClient

from juanie.api.app import create_app
from juanie.settings import Settings
from juanie.store import accounts
from juanie.store import projects as project_store
from juanie.store.models import Deployment

RESULTS = Path(__file__).parent / "results" / "ui_pages.json"
PROJECTS = 1000
WARMUP, RUNS = 3, 30
GOAL_MS = 200.0
PASSWORD = "bench-password-1"


def _fill(client: TestClient) -> float:
    """1,000 projects owned by a member (visibility is a real 1,000-name set), a deployment on each dev."""
    started = time.perf_counter()
    db = client.app.state.juanie.db  # type: ignore[attr-defined]
    with db.session() as s:
        accounts.create_user(s, "root", password=PASSWORD, is_admin=True)
        member = accounts.create_user(s, "member", password=PASSWORD)
        for i in range(PROJECTS):
            project = project_store.create_project(
                s, name=f"svc-{i:04d}", actor=member, description=f"service {i}"
            )
            s.flush()
            dev = project.environments[0]
            s.add(
                Deployment(
                    project_id=project.id,
                    environment_id=dev.id,
                    release=f"v1.{i}.0",
                    strategy="rolling",
                    status="success",
                    actor="member",
                )
            )
    return time.perf_counter() - started


def _sign_in(client: TestClient, username: str) -> None:
    client.cookies.clear()
    response = client.post("/api/auth/login", auth=(username, PASSWORD), json={"session": True})
    response.raise_for_status()


def _time(client: TestClient, path: str) -> dict[str, float]:
    for _ in range(WARMUP):
        assert client.get(path).status_code == 200, path
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, path
    samples.sort()
    median = statistics.median(samples)
    return {
        "median_ms": round(median, 2),
        "p90_ms": round(samples[int(len(samples) * 0.9) - 1], 2),
        "max_ms": round(samples[-1], 2),
        "runs": RUNS,
        "goal_ms": GOAL_MS,
        "meets_goal": median <= GOAL_MS,
        "bytes": len(response.content),
    }


def main() -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp), database_url=f"sqlite:///{Path(tmp) / 'juanie.db'}", run_controllers=False
        )
        with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
            fill_seconds = _fill(client)
            pages: dict[str, dict[str, float]] = {}
            for who in ("root", "member"):
                _sign_in(client, who)
                pages[f"home ({who})"] = _time(client, "/")
                pages[f"home page 15 ({who})"] = _time(client, "/?page=15")
                pages[f"home search ({who})"] = _time(client, "/?q=svc-09")
                pages[f"project ({who})"] = _time(client, "/projects/svc-0500")
            pages["events (member)"] = _time(client, "/events")
    results = {
        "bench": "ui_pages",
        "store": {"backend": "sqlite", "projects": PROJECTS, "environments": PROJECTS * 3},
        "fill_seconds": round(fill_seconds, 1),
        "pages": pages,
        "all_meet_goal": all(p["meets_goal"] for p in pages.values()),
        "machine": machine_info(),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0 if results["all_meet_goal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
