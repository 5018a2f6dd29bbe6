"""How long Juanie's controllers take to reconcile 1,000 services × 3 environments: render, commit to GitOps, converge.

The fleet is 100 projects × 10 services (the default; `--projects/--services` change it): a team's repository
usually holds several services that ship together, and Juanie's unit of delivery is a project's environment, so
this is the shape in which 1,000 services reach it — 300 environments, each one deployment that renders and
commits 10 services' manifests. (`--projects 1000 --services 1` gives the other extreme, 3,000 one-service
environments: more commits and reconciles, fewer manifests each.)

Everything on the controllers' path is real: the app from `create_app` with its controller runner, work queues and
leader lease, the environment controller (creating → active), the delivery controller (approval gate, the
project's `juanie.yaml` read from its git repository at the release's commit, `render_manifests`, the GitOps commit
of `rendered/<env>/` in the project's bare repository, the rolling update, success), SQLite as the embedded store.
Projects are created through the API (in-process, as `ui_pages.py` does). Releases are written with the store
functions the pipeline uses (building 100 pipelines is what `push_to_release.py` measures, not this); each project's
source repository is fetched once beforehand, as the pipeline that built its release would have. Then every
environment's deployment is created and approved in one transaction with the store functions the deploy and approve
routes call, and handed to the delivery controller as they do — all 300 intents at once, as Flux's benchmark
applies all its Kustomizations at once, so the clock measures the controllers and not 500 HTTP round trips
(`--via api` sends them one by one instead; those requests then wait behind the controllers' work).

The engine is a **counting engine** (below): it records every apply, reports every workload ready at once, and
counts its calls. What a real data plane does after `apply` — pull images, start pods or processes — is the
cluster's time, not the controllers', and is not measured here.

Figures: the total, from the moment the deployments exist until every one is `success`; the median and p95 time of
one environment (a deployment's `created_at` → `finished_at`), overall and per environment name.
Anchor: Flux needs 4m15s to reconcile 1,000 Kustomizations (Flux's own scaling benchmark).

Usage (from the repository root): python bench/reconcile.py [--projects 100] [--services 10]
Writes bench/results/reconcile.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import machine_info, stamp  # noqa: E402
from sqlalchemy import select  # noqa: E402

from juanie.engines.base import EnvRef, EnvStatus, GoldenSignals, Manifest, WorkloadStatus  # noqa: E402
from juanie.settings import Settings, sqlite_url  # noqa: E402
from juanie.store import deployments as dep_store  # noqa: E402
from juanie.store import pipelines as run_store  # noqa: E402
from juanie.store import projects as project_store  # noqa: E402
from juanie.store.models import Deployment, Environment  # noqa: E402
from tests.server_support import git  # noqa: E402

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

RESULTS = ROOT / "bench" / "results" / "reconcile.json"
ENVS = ("dev", "staging", "prod")
VERSION_LABEL = "app.kubernetes.io/version"
FLUX_ANCHOR_SECONDS = 255.0  # 4m15s for 1,000 Kustomizations
DEADLINE_SECONDS = 1800.0


class CountingEngine:
    """Stands in for the data plane: keeps what was applied, reports it ready at once, counts every call.

    It implements the whole `Engine` protocol, so the delivery controller drives it exactly as it drives the local
    or Kubernetes engine; only what happens after `apply` (processes, pods) is skipped.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.manifests_applied = 0
        self._applied: dict[str, tuple[list[Manifest], str]] = {}  # "project/env" -> (manifests, revision)

    async def apply(self, env: EnvRef, manifests: list[Manifest], revision: str = "") -> None:
        self.calls["apply"] += 1
        self.manifests_applied += len(manifests)
        self._applied[f"{env.project}/{env.env}"] = (manifests, revision)

    async def status(self, env: EnvRef) -> EnvStatus:
        self.calls["status"] += 1
        manifests, revision = self._applied.get(f"{env.project}/{env.env}", ([], ""))
        workloads = []
        for m in manifests:
            if m.get("kind") != "Deployment":
                continue
            labels = {**(m.get("metadata", {}).get("labels") or {}),
                      **(m.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {})}
            replicas = int(m.get("spec", {}).get("replicas", 1))
            version = str(labels.get(VERSION_LABEL, ""))
            workloads.append(WorkloadStatus(name=m["metadata"]["name"], desired=replicas, ready=replicas,
                                            updated=replicas, available=replicas, version=version,
                                            versions={version: replicas}, health="Healthy"))
        return EnvStatus(env=env, workloads=workloads, health="Healthy" if workloads else "Missing",
                         sync="Synced" if workloads else "Unknown", revision=revision)

    async def set_weights(self, env: EnvRef, route: str, weights: dict[str, int]) -> None:
        self.calls["set_weights"] += 1

    async def signals(self, env: EnvRef, service: str, version: str, window: float) -> GoldenSignals:
        self.calls["signals"] += 1
        return GoldenSignals(service, version, window)

    async def delete(self, env: EnvRef) -> None:
        self.calls["delete"] += 1
        self._applied.pop(f"{env.project}/{env.env}", None)

    async def stop(self, keep_running: bool = True) -> None:
        return None

    def env_refs(self) -> list[EnvRef]:
        """The environments applied so far; the observe collector reads each one's status every round, as it
        does with the local engine (this method is outside the `Engine` protocol, but observe relies on it)."""
        return [EnvRef(*ns.split("/", 1)) for ns in self._applied]


# ---- pure -------------------------------------------------------------------------------------------------------


def spec_text(project: str, services: int) -> str:
    """A juanie.yaml with `services` HTTP services and the example's strategies per environment."""
    lines = ["version: 1", "project:", f"  name: {project}", "  team: fleet", "services:"]
    for i in range(services):
        lines += [f"  svc-{i:02d}:", f"    run: python -m app.svc_{i:02d}", f"    port: {8000 + i}",
                  "    env: {LOG_LEVEL: info}"]
    lines += ["environments:",
              "  dev:", "    strategy: {type: rolling, max_surge: 1, max_unavailable: 0}",
              "  staging:", "    strategy: {type: canary, steps: [{weight: 10, pause: 30s}, {weight: 100, pause: 0s}]}",
              "  prod:", "    strategy: {type: canary, steps: [{weight: 5, pause: 1m}, {weight: 100, pause: 0s}]}"]
    return "\n".join(lines) + "\n"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def durations(rows: list[tuple[str, str, datetime, datetime | None]]) -> dict[str, Any]:
    """Per environment name and overall: median/p95/max of created → finished, in seconds. Pure."""
    out: dict[str, Any] = {}
    groups: dict[str, list[float]] = {"all": []}
    for env, _, created, finished in rows:
        if finished is None:
            continue
        seconds = (finished - created).total_seconds()
        groups["all"].append(seconds)
        groups.setdefault(env, []).append(seconds)
    for name, values in groups.items():
        out[name] = {"n": len(values),
                     "median": round(statistics.median(values), 2) if values else None,
                     "p95": None if not values else round(percentile(values, 0.95) or 0, 2),
                     "max": round(max(values), 2) if values else None}
    return out


# ---- edges ------------------------------------------------------------------------------------------------------


def _source(base: Path, project: str, services: int) -> tuple[Path, str]:
    repo = base / "sources" / project
    (repo / "app").mkdir(parents=True)
    (repo / "juanie.yaml").write_text(spec_text(project, services))
    (repo / "app" / "__init__.py").write_text("")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", f"{project}: initial import")
    return repo, git(repo, "rev-parse", "HEAD")


def _deploy_through_api(client: TestClient, names: list[str], versions: dict[str, str]) -> int:
    """One POST /deploy per environment (and its approval), one after the other, as a script would."""
    approvals = 0
    for name in names:
        for env in ENVS:
            dep = _ok(client.post(f"/api/projects/{name}/deploy",
                                  json={"env": env, "release": versions[name], "reason": "bench"}))
            if (dep.get("approval") or {}).get("status") == "requested":
                _ok(client.post(f"/api/deployments/{dep['id']}/approve", json={"reason": "bench"}))
                approvals += 1
    return approvals


def _deploy_at_once(state: Any, names: list[str], versions: dict[str, str]) -> int:
    """Every environment's deployment in one transaction, approved, then handed to the delivery controller: what the
    deploy and approve routes do (the same store functions, the same nudge), without 500 requests in between."""
    from juanie.controllers.delivery import NAME as DELIVERY

    approvals = 0
    ids = []
    with state.db.session() as s:
        for name in names:
            project = project_store.get_project(s, name)
            for env_name in ENVS:
                env = project_store.get_environment(s, project, env_name)
                dep = dep_store.create_deployment(s, project, env, release=versions[name], strategy=env.strategy,
                                                  actor="admin", reason="bench")
                approval = dep_store.approval_of(s, dep)
                if approval is not None:
                    dep_store.decide(s, project, env, approval, "approved", actor="admin", reason="bench")
                    approvals += 1
                ids.append(dep.id)
    for dep_id in ids:
        state.runner.enqueue(DELIVERY, dep_id)
    return approvals


def _reconcile_stats(metrics: Any) -> dict[str, dict[str, float]]:
    """Per controller: reconcile calls and seconds spent in them, from the server's own histogram."""
    out: dict[str, dict[str, float]] = {}
    for family in metrics.reconcile_duration.collect():
        for sample in family.samples:
            name = sample.labels.get("controller", "")
            if sample.name.endswith("_count"):
                out.setdefault(name, {})["calls"] = int(sample.value)
            elif sample.name.endswith("_sum"):
                out.setdefault(name, {})["seconds"] = round(sample.value, 2)
    return out


def _ok(response: Any) -> Any:
    if response.status_code >= 400:
        raise SystemExit(f"{response.request.method} {response.request.url}: {response.status_code} {response.text}")
    return response.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--services", type=int, default=10, help="services per project")
    parser.add_argument("--via", choices=("store", "api"), default="store",
                        help="store: every deployment created (and approved) at once; api: one request each")
    args = parser.parse_args()
    if not 1 <= args.projects <= 2000 or not 1 <= args.services <= 50:
        parser.error("--projects must be 1..2000 and --services 1..50")
    # The app is imported here, not at the top, so that the pure helpers above load quickly (tests import them).
    from fastapi.testclient import TestClient

    from juanie.api.app import create_app
    from juanie.controllers.pipelines import source_repo

    begun = time.monotonic()
    started_at = datetime.now(UTC).isoformat()
    machine = machine_info()
    base = Path(tempfile.mkdtemp(prefix="juanie-bench-reconcile-"))
    data = base / "data"
    settings = Settings(data_dir=data, database_url=sqlite_url(data), engine="none", lease_seconds=10.0,
                        local_repo_roots=(base,))  # the fleet's sources live beside the data directory
    app = create_app(settings)
    engine = CountingEngine()
    names = [f"fleet-{i:04d}" for i in range(args.projects)]
    try:
        t = time.monotonic()
        sources = {name: _source(base, name, args.services) for name in names}
        repos_seconds = time.monotonic() - t
        with TestClient(app) as client:
            state = app.state.juanie
            state.engine = engine  # engine "none" at start; the delivery controller asks `state.engine` each time
            client.headers["Authorization"] = f"Bearer {(data / 'admin-token').read_text().strip()}"
            t = time.monotonic()
            for name in names:
                _ok(client.post("/api/projects", json={"name": name, "repo_url": str(sources[name][0])}))
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                with state.db.session() as s:
                    waiting = s.scalar(select(Environment.id).where(Environment.status != "active").limit(1))
                if waiting is None:
                    break
                time.sleep(0.2)
            else:
                raise SystemExit("environments did not all become active within 600 s")
            projects_seconds = time.monotonic() - t
            t = time.monotonic()
            versions = {}
            for name in names:
                source_repo(state.pipelines.ctx, state.db, state.box, name).fetch()
                sha = sources[name][1]
                with state.db.session() as s:
                    project = project_store.get_project(s, name)
                    run = run_store.queue_run(s, project, branch="main", commit_sha=sha, trigger="push",
                                              actor="bench")
                    run_store.transition_run(s, project, run, "running", actor="bench")
                    run_store.transition_run(s, project, run, "succeeded", actor="bench")
                    artifacts = {f"svc-{i:02d}": {"image": f"juanie.local/{name}/svc-{i:02d}:{sha[:12]}"}
                                 for i in range(args.services)}
                    versions[name] = run_store.record_release(s, project, run, artifacts, actor="bench").version
            releases_seconds = time.monotonic() - t
            print(f"{args.projects} projects × {args.services} services ready "
                  f"(repos {repos_seconds:.1f}s, projects {projects_seconds:.1f}s, releases {releases_seconds:.1f}s);"
                  f" deploying {args.projects * len(ENVS)} environments ...", flush=True)
            started = time.monotonic()
            if args.via == "api":
                approvals = _deploy_through_api(client, names, versions)
            else:
                approvals = _deploy_at_once(state, names, versions)
            requested_seconds = time.monotonic() - started
            expected = args.projects * len(ENVS)
            deadline = started + DEADLINE_SECONDS
            last_print = 0.0
            while True:
                with state.db.session() as s:
                    counts = Counter(s.scalars(select(Deployment.status)))
                if counts.get("success", 0) >= expected or set(counts) <= {"success", "cancelled", "rolled_back"}:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"not converged within {DEADLINE_SECONDS:.0f}s: {dict(counts)}")
                if time.monotonic() - last_print > 10:
                    print(f"  {time.monotonic() - started:6.1f}s {dict(counts)}", flush=True)
                    last_print = time.monotonic()
                time.sleep(0.1)
            total = time.monotonic() - started
            with state.db.session() as s:
                rows = [(env, dep.status, dep.created_at, dep.finished_at) for dep, env in
                        s.execute(select(Deployment, Environment.name)
                                  .join(Environment, Environment.id == Deployment.environment_id))]
                commits = sum(1 for dep in s.scalars(select(Deployment)) if dep.gitops_commit)
            log = _ok(client.get(f"/api/projects/{names[0]}/gitops/log"))["items"]
            reconciles = _reconcile_stats(state.metrics)
        statuses = Counter(status for _, status, _, _ in rows)
        per_env = durations(rows)
        result = {
            "total_seconds": round(total, 2),
            "environment_seconds_median": per_env["all"]["median"],
            "environment_seconds_p95": per_env["all"]["p95"],
            "per_environment": per_env,
            "services": args.projects * args.services,
            "projects": args.projects,
            "services_per_project": args.services,
            "environments": expected,
            "deployments": dict(statuses),
            "all_success": statuses.get("success", 0) == expected,
            "gitops_commits": commits,
            "gitops_log_first_project": [c.get("environment") for c in log],
            "engine_calls": dict(engine.calls),
            "reconciles": reconciles,
            "manifests_applied": engine.manifests_applied,
            "approvals_given": approvals,
            "deploy_requests_seconds": round(requested_seconds, 2),
            "deployments_created_via": args.via,
            "setup_seconds": {"source_repositories": round(repos_seconds, 1),
                              "projects_active": round(projects_seconds, 1), "releases": round(releases_seconds, 1)},
            "anchor": {"flux_1000_kustomizations_seconds": FLUX_ANCHOR_SECONDS,
                       "note": "Flux's scaling benchmark: 1,000 Kustomizations reconciled in 4m15s"},
            "method": {
                "fleet": f"{args.projects} projects × {args.services} services × {len(ENVS)} environments",
                "path": "POST /api/projects/{p}/deploy (+ approve) → delivery controller: juanie.yaml at the "
                        "release's commit, render_manifests, GitOps commit, rolling update, success",
                "engine": "counting engine: records applies, reports workloads ready at once",
                "store": "SQLite (embedded default)",
                "start": "the deployments are committed (--via store) or the first deploy request is sent (--via api)",
                "end": "every deployment success (polled every 0.1 s)",
                "environment_time": "a deployment's created_at → finished_at",
            },
        }
    finally:
        shutil.rmtree(base, ignore_errors=True)
    result = stamp(result, started_at, begun, machine)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: result[k] for k in ("total_seconds", "environment_seconds_median", "deployments",
                                              "gitops_commits", "engine_calls")}))


if __name__ == "__main__":
    main()
