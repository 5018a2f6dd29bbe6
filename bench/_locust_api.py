"""The API load as Locust users, run headless through Locust's library API; used by bench/api_load.py.

It runs in a child process of its own because Locust (gevent) patches the standard library on import, which the
bench process — starting and stopping a server, seeding a database — must not have.

Each user is one API client with a developer's token: mostly reads of what a CLI, the UI and scripts ask for
(project list, one project, its environments, runs, deployments, releases, events), plus about one request in ten a
cheap write (a project's description, a secret's new value). Every answer other than 2xx counts as a failure.

Usage: python bench/_locust_api.py '<json: host, token, projects, users, seconds, think>'   (prints a JSON result)
"""

from __future__ import annotations

import json
import random
import sys
import time
from typing import Any, ClassVar

import gevent
from locust import FastHttpUser, between, constant, events, task
from locust.env import Environment

PERCENTILES = {"p50_ms": 0.5, "p90_ms": 0.9, "p95_ms": 0.95, "p99_ms": 0.99, "p999_ms": 0.999}


class ApiClient(FastHttpUser):
    """One API client. `projects`, `token` and `wait_time` are set from the configuration before the run."""

    projects: ClassVar[list[str]] = []
    token: ClassVar[str] = ""
    abstract = False

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {self.token}"}

    def _call(self, method: str, template: str, **kwargs: Any) -> None:
        """One request to `template` with {p} a random own project; stats are kept per template."""
        path = template.replace("{p}", random.choice(self.projects))
        self.client.request(method, path, headers=self.auth, name=f"{method} {template}", **kwargs)

    @task(3)
    def list_projects(self) -> None:
        self._call("GET", "/api/projects")

    @task(2)
    def project(self) -> None:
        self._call("GET", "/api/projects/{p}")

    @task(2)
    def environments(self) -> None:
        self._call("GET", "/api/projects/{p}/environments")

    @task(2)
    def runs(self) -> None:
        self._call("GET", "/api/projects/{p}/runs")

    @task(2)
    def deployments(self) -> None:
        self._call("GET", "/api/projects/{p}/deployments")

    @task(1)
    def releases(self) -> None:
        self._call("GET", "/api/projects/{p}/releases")

    @task(2)
    def events(self) -> None:
        self._call("GET", "/api/events?project={p}&limit=50")

    @task(1)
    def update_description(self) -> None:
        self._call("PATCH", "/api/projects/{p}", json={"description": f"updated {time.time():.3f}"})

    @task(1)
    def rotate_secret(self) -> None:
        self._call("PUT", "/api/projects/{p}/secrets/BENCH_TOKEN", json={"value": f"tok-{random.getrandbits(64):x}"})


def _entry(stats: Any) -> dict[str, Any]:
    return {
        "requests": stats.num_requests,
        "failures": stats.num_failures,
        "rps": round(stats.total_rps, 1),
        "mean_ms": round(stats.avg_response_time, 2),
        **{name: stats.get_response_time_percentile(q) for name, q in PERCENTILES.items()},
        "max_ms": round(stats.max_response_time, 2),
    }


def run(config: dict[str, Any]) -> dict[str, Any]:
    ApiClient.projects = list(config["projects"])
    ApiClient.token = config["token"]
    think = config["think"]
    ApiClient.wait_time = between(*think) if think else constant(0)
    env = Environment(user_classes=[ApiClient], host=config["host"], events=events)
    runner = env.create_local_runner()
    users, seconds = int(config["users"]), float(config["seconds"])
    runner.start(users, spawn_rate=users)  # all clients at once: the measured window is the steady state
    gevent.sleep(float(config.get("warmup", 0)))
    env.stats.reset_all()  # connections and first requests of each client are the warm-up, not the figure
    started = time.monotonic()
    gevent.sleep(seconds)
    elapsed = time.monotonic() - started
    total = env.stats.total
    result = {
        "total": _entry(total) | {"rps": round(total.num_requests / elapsed, 1)},
        "endpoints": {name: _entry(s) for (name, _), s in sorted(env.stats.entries.items())},
        "errors": {f"{e.name}: {e.error}"[:300]: e.occurrences for e in env.stats.errors.values()},
        "users": users,
        "measured_seconds": round(elapsed, 1),
    }
    runner.quit()
    return result


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
