"""Crash safety: kill -9 the Juanie server at 20 seeded random moments while pipelines run and rollouts roll on the
local engine (microshop: a rolling dev, a canary staging), with load through the gateway the whole time.

After each restart on the same data directory: every run and deployment that was in flight ends or visibly resumes;
the replicas running are exactly the ones the engine reports (no orphan, no duplicate, none restarted where nothing
was rolling) and no pipeline step outlives its run; no event the API had shown is lost, changed or reordered and
every run's and deployment's lifecycle replays in order; and the gateway has not failed one request.

The seed is printed; `JUANIE_CRASH_SEED=<seed>` replays the same moments and actions (the machine's own timing still
varies from one run to the next).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.delivery_support import deploy, faster_canary, final, release
from tests.e2e.loop_support import push
from tests.integration.crash.crash_support import (
    DEPLOYMENT_FINAL,
    RUN_FINAL,
    Kill,
    all_events,
    event_problems,
    lifecycles,
    revisions,
    scan,
    status_pids,
    summary,
)
from tests.load_support import Load
from tests.server_support import (
    Server,
    git,
    microshop_source,
    register_microshop,
    start_server,
    stop_everything,
    wait_run,
)
from tests.support import free_port, wait_until

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("JUANIE_CRASH_SEED") or random.SystemRandom().randrange(1_000_000))
KILLS = 20
ENVS = ("dev", "staging")
# When to kill: after a random delay, or a little after the running pipeline enters its build or test step, or
# right after the next step a rollout records.
MOMENTS = ("delay", "delay", "build step", "test step", "rollout step")
# The restarted server's controllers wait for the dead server's lease to lapse; 3 s instead of the default 10 s keeps
# twenty restarts within the time budget and still renews four times per lease.
LEASE_SECONDS = "3"


@dataclass
class Snapshot:
    """What the API and the process table showed just before the kill."""

    runs: list[dict[str, Any]]
    deployments: list[dict[str, Any]]
    statuses: dict[str, dict[str, Any]]
    events: list[dict[str, Any]]
    gateways: set[int]

    @property
    def busy(self) -> set[str]:
        return {d["environment"] for d in self.deployments}

    def describe(self) -> list[str]:
        out = []
        for r in self.runs:
            steps = [s["key"] for s in r["steps"] if s["state"] == "running"]
            out.append(f"run #{r['number']} {r['status']}" + (f" in {', '.join(steps)}" if steps else ""))
        for d in self.deployments:
            where = f" at {d['weights']['canary']}%" if d.get("weights") else ""
            out.append(f"{d['environment']} {d['strategy']} #{d['id']} {d['status']} {d['phase'] or ''}{where}")
        return out


class Harness:
    def __init__(self, base: Path):
        self.source = microshop_source(base / "source")
        faster_canary(self.source)
        _test_stage_with_a_helper_in_the_background(self.source)
        self.data_dir = base / "data"
        self.gateway_port = free_port()
        self.env = {"JUANIE_ENGINE": "local", "JUANIE_GATEWAY_PORT": str(self.gateway_port),
                    "JUANIE_GATEWAY_ADMIN_PORT": str(free_port()), "JUANIE_LEASE_SECONDS": LEASE_SECONDS}
        self.port = free_port()
        self.server: Server = start_server(self.data_dir, env=self.env, port=self.port)
        self.secret = ""
        self.releases: tuple[str, str] = ("", "")

    def gateway(self, env: str, service: str) -> str:
        return f"http://127.0.0.1:{self.gateway_port}/microshop-{env}/{service}/"

    # ---- the scenario ---------------------------------------------------------------------------------------------
    def set_up(self) -> None:
        """Two releases, A live in dev and staging; B's pipeline runs while A rolls out."""
        register_microshop(self.server, self.source, "sk-crash")
        self.secret = self.server.ok("POST", "/api/projects/microshop/webhook")["secret"]
        first = release(self.server)
        self._commit("the second release")
        second = self.server.ok("POST", "/api/projects/microshop/runs", json={"ref": git(self.source, "rev-parse",
                                                                                          "HEAD")})
        deps = [deploy(self.server, "dev", first), deploy(self.server, "staging", first, approve=True)]
        built = wait_run(self.server, second["id"], timeout=300)
        assert built["status"] == "succeeded", built
        self.releases = (first, built["commit"][:12])
        for dep in deps:
            assert (done := final(self.server, dep["id"]))["status"] == "success", done

    def keep_busy(self, n: int) -> None:
        """A pipeline running (a pushed commit) and a rollout in each environment (the other release)."""
        if not self.active_runs():
            before = git(self.source, "rev-parse", "main")
            self._commit(f"change {n}")
            response = push(self.server, self.source, self.secret, "main", before)
            assert response.status_code == 202, response.text
        busy = {d["environment"] for d in self.active_deployments()}
        # No new canary near the end, so the drain does not wait out a whole fresh rollout.
        for env in [e for e in ENVS if e not in busy and (e == "dev" or n <= KILLS - 3)]:
            live = self.server.ok("GET", "/api/projects/microshop/deployments", params={
                "env": env, "status": "success", "limit": 1})["items"][0]["release"]
            deploy(self.server, env, self.releases[1] if live == self.releases[0] else self.releases[0],
                   approve=env != "dev")

    def wait_for_moment(self, mode: str, delay: float) -> str:
        """Block until the moment to kill: `delay` seconds, or `delay` after the run or rollout reaches its mark."""
        deadline = time.monotonic() + 10
        if mode in ("build step", "test step"):
            stage = mode.split()[0]

            def entered() -> bool:
                runs = self.active_runs()
                return not runs or any(s["stage"] == stage and s["state"] != "queued" for s in runs[0]["steps"])

            while not entered() and time.monotonic() < deadline:
                time.sleep(0.1)
        elif mode == "rollout step":
            def marks() -> dict[int, tuple[Any, ...]]:
                return {d["id"]: (d["status"], d["phase"], d["step"], str(d["weights"]))
                        for d in self.active_deployments()}

            start = marks()
            while start and marks() == start and time.monotonic() < deadline:
                time.sleep(0.1)
        time.sleep(delay)  # the moment itself is what the seed chose
        return f"{mode} +{delay:.1f}s"

    def snapshot(self) -> Snapshot:
        # The rollouts in flight are read on both sides of the statuses: one that ends in between still counts as
        # rolling, since the statuses may show it mid-way.
        rolling = self.active_deployments()
        statuses = {env: self._status(env) for env in ENVS}
        runs, deployments = self.active_runs(), self.active_deployments()
        seen = {d["id"] for d in deployments}
        deployments += [d for d in rolling if d["id"] not in seen]
        return Snapshot(runs, deployments, statuses, all_events(self.server), scan(self.data_dir).gateways)

    def kill_and_restart(self) -> tuple[dict[int, tuple[str, int]], float]:
        """kill -9 the server; read what the database holds at that instant; start a new server on the same data."""
        self.server.proc.send_signal(signal.SIGKILL)
        self.server.proc.wait(10)
        at_kill = revisions(self.data_dir)
        started = time.monotonic()
        self.server = start_server(self.data_dir, env=self.env, port=self.port)
        return at_kill, time.monotonic() - started

    # ---- the checks after a restart -------------------------------------------------------------------------------
    def check_recovery(self, before: Snapshot, at_kill: dict[int, tuple[str, int]]) -> list[str]:
        outcome: list[str] = []
        after = all_events(self.server)
        assert not (problems := event_problems(before.events, after)), problems
        assert not (problems := lifecycles(after)[1]), problems
        for run in before.runs:
            def ended_or_picked_up(r: dict[str, Any] = run) -> dict[str, Any] | None:
                now = self.server.ok("GET", f"/api/runs/{r['id']}")
                return now if now["status"] in RUN_FINAL or (r["status"], now["status"]) == ("queued", "running") \
                    else None

            done = wait_until(ended_or_picked_up, timeout=60, interval=0.2,
                              message=f"run #{run['number']} to end or start after the restart")
            if done["status"] in RUN_FINAL:
                left = [pid for pid, run_id in scan(self.data_dir).steps.items() if run_id == str(run["id"])]
                assert not left, f"run #{run['number']} is {done['status']} but its step processes {left} still run"
            outcome.append(f"run #{done['number']} {done['status']} {(done['error'] or '')[:70]}".rstrip())
        for dep_id, (_, revision) in at_kill.items():
            def resumed(i: int = dep_id, r: int = revision) -> tuple[str, int] | None:
                status, now = revisions(self.data_dir, [i])[i]
                return (status, now) if status in DEPLOYMENT_FINAL or now > r else None

            status, now = wait_until(resumed, timeout=60, interval=0.2, message=f"deployment {dep_id} to resume")
            outcome.append(f"deployment {dep_id} {status}, revision {revision} -> {now}")
        self.check_processes(before)
        assert scan(self.data_dir).gateways == before.gateways, "the gateway was restarted or duplicated"
        return outcome

    def check_processes(self, before: Snapshot | None = None) -> None:
        """Every replica the process table shows is one the engine reports and none runs twice; where nothing rolls,
        the same replicas run as before the kill, exactly as many as desired, all ready; no step outlives its run."""
        mismatch: list[str] = []

        def consistent() -> tuple[dict[str, dict[str, Any]], Any] | None:
            first = {env: self._status(env) for env in ENVS}
            seen = scan(self.data_dir)
            second = {env: self._status(env) for env in ENVS}
            for env in ENVS:
                a = set().union(*status_pids(first[env]).values())
                b = set().union(*status_pids(second[env]).values())
                pids = seen.pids_of(f"microshop-{env}")
                if not (pids <= a | b and a & b <= pids):
                    mismatch[:] = [f"{env}: running {sorted(pids)}, engine {sorted(a)} then {sorted(b)}; "
                                   f"{[(p, seen.replicas[p].instance) for p in sorted(pids - (a | b))]}"]
                    return None
            mismatch[:] = seen.duplicated_instances()
            return (second, seen) if not mismatch else None

        try:
            statuses, _ = wait_until(consistent, timeout=30, interval=0.3,
                                        message="the processes running to match what the engine reports")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last difference: {mismatch}") from None
        busy = {d["environment"] for d in self.active_deployments()} | (before.busy if before else set())
        for env in ENVS:
            if env in busy:
                continue
            for w in statuses[env]["workloads"]:
                running = [i for i in w["instances"] if i["pid"]]
                assert len(running) == w["desired"] == w["ready"], (env, w["name"], w["desired"], running)
            if before is not None:
                old = {w["name"]: w for w in before.statuses[env]["workloads"]}
                for w in statuses[env]["workloads"]:
                    if old.get(w["name"], {}).get("desired") == w["desired"]:
                        serving = status_pids(before.statuses[env], terminating=False)[w["name"]]
                        assert status_pids(statuses[env])[w["name"]] == serving, \
                            f"{env}/{w['name']}: replicas were restarted although nothing was rolling"
        running = {str(r["id"]) for r in self.active_runs()}
        steps = scan(self.data_dir).steps
        running |= {str(r["id"]) for r in self.active_runs()}
        stray = {pid: run for pid, run in steps.items() if run not in running}
        assert not stray, f"pipeline step processes of runs that ended: {stray}"

    def drain(self) -> None:
        """No new work: every run and deployment ends, and the log's story of each matches its recorded state."""
        wait_until(lambda: not self.active_runs() and not self.active_deployments(), timeout=240, interval=0.5,
                   message="every run and deployment to end")
        self.check_processes()
        assert not scan(self.data_dir).steps
        states, problems = lifecycles(all_events(self.server))
        assert not problems, problems
        for run in self.server.ok("GET", "/api/projects/microshop/runs", params={"limit": 500})["items"]:
            assert states[f"run/microshop/{run['number']}"] == run["status"], run
        for dep in self.server.ok("GET", "/api/projects/microshop/deployments", params={"limit": 500})["items"]:
            assert states[f"deployment/{dep['id']}"] == dep["status"], dep
        for env in ENVS:
            live = self.server.ok("GET", "/api/projects/microshop/deployments", params={
                "env": env, "status": "success", "limit": 1})["items"][0]["release"]
            assert {w["version"] for w in self._status(env)["workloads"]} == {live}, env

    # ---- reading ---------------------------------------------------------------------------------------------------
    def active_runs(self) -> list[dict[str, Any]]:
        runs = self.server.ok("GET", "/api/projects/microshop/runs", params={"limit": 20})["items"]
        return [r for r in runs if r["status"] not in RUN_FINAL]

    def active_deployments(self) -> list[dict[str, Any]]:
        deps = self.server.ok("GET", "/api/projects/microshop/deployments", params={"limit": 20})["items"]
        return [d for d in deps if d["status"] not in DEPLOYMENT_FINAL]

    def log_tail(self, lines: int = 80) -> str:
        """The server log's last lines, without the HTTP client chatter, to read a failure by."""
        kept = [ln for ln in self.server.log().splitlines() if "httpx: HTTP Request" not in ln]
        return "\n".join(["server log (tail):", *kept[-lines:]])

    def _status(self, env: str) -> dict[str, Any]:
        return self.server.ok("GET", f"/api/projects/microshop/environments/{env}/status")

    def _commit(self, message: str) -> None:
        (self.source / "CHANGES.md").write_text(f"{message}\n")
        git(self.source, "add", "-A")
        git(self.source, "commit", "-qm", f"docs: {message}")


def _test_stage_with_a_helper_in_the_background(source: Path) -> None:
    """The test stage first starts a long-lived helper in the background, as suites do with a fake service. Left to
    itself it would outlive a crash by ten minutes, so only Juanie ending a dead run's processes removes it: without
    it, a step killed with the server mostly dies of its closed pipes on its own and proves nothing."""
    spec = (source / "juanie.yaml").read_text()
    old = "  test:\n    run: python -m pytest tests -q\n"
    assert old in spec
    new = "  test:\n    run:\n      - sleep 600 >/dev/null 2>&1 &\n      - python -m pytest tests -q\n"
    spec = spec.replace(old, new)
    (source / "juanie.yaml").write_text(spec)
    git(source, "commit", "-qam", "ci: the tests start a helper in the background")


@pytest.mark.timeout(600)
def test_twenty_kill_9s_during_pipelines_and_rollouts_lose_nothing_and_fail_no_request(tmp_path):
    print(f"\ncrash harness seed {SEED} (JUANIE_CRASH_SEED={SEED} replays it)")
    rng = random.Random(SEED)
    phases: dict[str, float] = {}
    mark = time.monotonic()
    harness = Harness(tmp_path)
    kills: list[Kill] = []
    staging = Load(harness.gateway("staging", "payment"), rps=40, max_seconds=900)
    dev = Load(harness.gateway("dev", "payment"), rps=10, max_seconds=900)
    passed = False
    try:
        harness.set_up()
        phases["set-up"], mark = time.monotonic() - mark, time.monotonic()
        with staging, dev:
            wait_until(lambda: sum(staging.outcomes.values()) > 40, timeout=30, message="load running")
            for n in range(1, KILLS + 1):
                mode, delay = rng.choice(MOMENTS), rng.uniform(0.2, 2.0)
                harness.keep_busy(n)
                moment = harness.wait_for_moment(mode, delay if mode == "delay" else delay / 2)
                before = harness.snapshot()
                kill = Kill(n, moment, before.describe())
                kills.append(kill)
                at_kill, kill.restart_seconds = harness.kill_and_restart()
                recovering = time.monotonic() - kill.restart_seconds
                kill.outcome = harness.check_recovery(before, at_kill)
                kill.recovery_seconds = time.monotonic() - recovering
                assert staging.failed == 0 and dev.failed == 0, (n, dict(staging.outcomes), dict(dev.outcomes))
            phases["kills"], mark = time.monotonic() - mark, time.monotonic()
            harness.drain()
            phases["drain"] = time.monotonic() - mark
        assert staging.failed == 0 and dev.failed == 0, (dict(staging.outcomes), dict(dev.outcomes))
        passed = True
    finally:
        print(summary(SEED, kills, dict(staging.outcomes + dev.outcomes), phases))
        if not passed:
            print(harness.log_tail())
        left = stop_everything(harness.server)
        leftover = scan(harness.data_dir)
        for pid in [*leftover.replicas, *leftover.steps, *leftover.gateways]:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
            left.append(pid)
    assert len(kills) == KILLS
    assert not left, f"processes left behind after `down`: {left}"
