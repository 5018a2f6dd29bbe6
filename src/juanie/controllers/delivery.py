"""The delivery controller: one deployment, one step at a time, toward its desired state.

pending → (approval) → the rendered environment is committed to GitOps → running: the strategy's planner decides
the next step from what the engine and the judge observe (`delivery.strategies.plan_next_step`), the controller
acts, records the rollout state, and comes back. Everything it needs is in the database, so a server killed at
any line resumes from the recorded step; a rollback sends all traffic to stable, stops the new version, and
reverts the GitOps commit with the judge's verdict as its message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select, update

from juanie.controllers.gitops import GitOpsRepos
from juanie.controllers.namespaces import bind, checked_bind, load_assignment
from juanie.controllers.runner import Controller, Requeue
from juanie.controllers.specs import SpecCache
from juanie.delivery import manifests as mf
from juanie.delivery.judge import Verdict, judge
from juanie.delivery.plan import (
    ALL_STABLE,
    Done,
    IllegalTransition,
    Observation,
    Pause,
    Promote,
    RollBack,
    RollingUpdate,
    ScaleDownOld,
    SetWeights,
    StartCanary,
    StartPreview,
    SwitchTraffic,
    abort,
    new_rollout,
    pause,
    resume,
)
from juanie.delivery.settings import (
    judge_config,
    new_replicas,
    rolled_out,
    rollout_config,
    rollout_from_dict,
    rollout_to_dict,
    sample,
    stable_revision,
    strategy_of,
)
from juanie.delivery.strategies import plan_next_step
from juanie.domain.errors import Conflict
from juanie.engines.base import Engine, EnvRef
from juanie.gitops import CommitMessage
from juanie.render import ReleaseRef, render_manifests
from juanie.spec import ProjectSpec
from juanie.store import deployments as dep_store
from juanie.store import projects as project_store
from juanie.store.db import Database
from juanie.store.events import record
from juanie.store.models import Deployment, Environment, PipelineRun, Project, Release

log = logging.getLogger("juanie.delivery")
NAME = "delivery"
SIGNAL_WINDOW_MAX = 900.0


@dataclass
class _Ctx:
    id: int
    status: str
    revision: int
    project: str
    env: str
    namespace: str
    strategy: str
    kind: str
    actor: str
    reason: str
    state: dict[str, Any]
    gitops_commit: str
    gitops_url: str
    release: Release
    previous: Release | None
    gate: str

    @property
    def ref(self) -> EnvRef:
        return EnvRef(self.project, self.env, self.namespace)


class DeliveryService:
    def __init__(self, db: Database, specs: SpecCache, gitops: GitOpsRepos, engine: Callable[[], Engine | None],
                 actor: str):
        self.db, self.specs, self.gitops, self.engine, self.actor = db, specs, gitops, engine, actor

    def controller(self) -> Controller:
        return Controller(name=NAME, reconcile=self.reconcile, list_keys=self.list_keys, resync_seconds=3.0,
                          workers=4, max_backoff=15.0)

    async def list_keys(self) -> Iterable[Hashable]:
        def load() -> list[int]:
            with self.db.session() as s:
                return list(s.scalars(select(Deployment.id).where(or_(
                    Deployment.status.in_(dep_store.ACTIVE), Deployment.status == "failed"))))

        return await asyncio.to_thread(load)

    # ---- the loop -------------------------------------------------------------------------------------------
    async def reconcile(self, key: Hashable) -> Requeue | None:
        ctx = await asyncio.to_thread(self._load, int(key))  # type: ignore[call-overload]
        if ctx is None:
            return None
        engine = self.engine()
        if engine is None:
            if ctx.status == "pending":
                await asyncio.to_thread(self._move, ctx, "cancelled", "this server runs without an engine")
            return None
        if ctx.status == "pending":
            return await self._start(ctx)
        if ctx.status in ("running", "failed"):
            return await self._step(ctx, engine)
        return None

    def _load(self, dep_id: int) -> _Ctx | None:
        with self.db.session() as s:
            dep = s.get(Deployment, dep_id)
            if dep is None or dep.status not in ("pending", "running", "failed"):
                return None
            project, env = s.get(Project, dep.project_id), s.get(Environment, dep.environment_id)
            assert project is not None and env is not None
            release = s.scalar(select(Release).where(Release.project_id == project.id,
                                                     Release.version == dep.release))
            if release is None:
                if dep.status == "pending":
                    dep_store.transition(s, project, env, dep, "cancelled", actor=self.actor,
                                         message=f"release {dep.release} does not exist")
                return None
            previous = None
            if dep.previous_release:
                previous = s.scalar(select(Release).where(Release.project_id == project.id,
                                                          Release.version == dep.previous_release))
            gate = dep_store.gate(dep_store.approval_of(s, dep), datetime.now(UTC))
            s.expunge_all()
            return _Ctx(dep.id, dep.status, dep.revision, project.name, env.name, env.namespace, dep.strategy,
                        dep.kind, dep.actor, dep.reason, dict(dep.state or {}), dep.gitops_commit,
                        project.gitops_url, release, previous, gate)

    def _move(self, ctx: _Ctx, target: str, message: str, **data: Any) -> None:
        with self.db.session() as s:
            dep = s.get(Deployment, ctx.id)
            assert dep is not None
            project, env = s.get(Project, dep.project_id), s.get(Environment, dep.environment_id)
            dep_store.transition(s, project, env, dep, target, actor=self.actor, message=message, data=data)  # type: ignore[arg-type]

    def _save(self, ctx: _Ctx, **values: Any) -> bool:
        """Write only if nobody wrote since we loaded (the API appends commands): a stale plan is dropped."""
        with self.db.session() as s:
            done = s.execute(update(Deployment).where(Deployment.id == ctx.id, Deployment.revision == ctx.revision)
                             .values(revision=ctx.revision + 1, **values)).rowcount
        if done:
            ctx.revision += 1
        return bool(done)

    # ---- pending: approval, GitOps commit, start ------------------------------------------------------------
    async def _start(self, ctx: _Ctx) -> Requeue | None:
        if ctx.gate == "wait":
            return Requeue(after=2.0)
        if ctx.gate == "stop":
            await asyncio.to_thread(self._move, ctx, "cancelled", "approval rejected or expired")
            return None
        try:
            spec = await asyncio.to_thread(self._spec, ctx, ctx.release, True)
        except Conflict as exc:
            await asyncio.to_thread(self._move, ctx, "cancelled", exc.message)
            return None
        new = self._render(spec, ctx.env, ctx.release)
        engine = self.engine()
        status = await engine.status(ctx.ref) if engine else None
        running_before = bool(status and status.workloads) and ctx.previous is not None
        # Nothing to compare against on a first deploy, and a rollback goes back to known-good at once: rolling.
        wanted = strategy_of(spec, ctx.env) if ctx.env in spec.environments else ctx.strategy.replace("-", "_")
        strategy = wanted if running_before and ctx.kind != "rollback" else "rolling"
        ctx.strategy = strategy
        if not ctx.gitops_commit:
            sha = await asyncio.to_thread(self._commit, ctx, spec)
            if not self._save(ctx, gitops_commit=sha):
                return Requeue(after=0.1)
            ctx.gitops_commit = sha
        rollout = new_rollout(strategy, ctx.release.version, time.time())  # type: ignore[arg-type]
        state = {**ctx.state, "rollout": rollout_to_dict(rollout), "strategy": strategy,
                 "services": sorted(mf.routed_services(new))}
        if not self._save(ctx, state=state, strategy=strategy):
            return Requeue(after=0.1)
        await asyncio.to_thread(self._move, ctx, "running", f"{strategy} rollout of {ctx.release.version} started",
                                gitops_commit=ctx.gitops_commit)
        return Requeue(after=0.05)

    def _spec(self, ctx: _Ctx, release: Release, check: bool = False) -> ProjectSpec:
        """The release's juanie.yaml bound to this installation: the environment's own namespace, never another
        project's (`check` refuses a declaration naming one, with the owner; see `controllers.namespaces`)."""
        spec = self.specs.at_commit(ctx.project, release.commit_sha)
        if check:
            return checked_bind(spec, ctx.env, load_assignment(self.db, ctx.project))
        return bind(spec, ctx.env, ctx.project, ctx.namespace)

    def _render(self, spec: ProjectSpec, env: str, release: Release) -> list[dict[str, Any]]:
        images = {svc: a.get("image", "") for svc, a in (release.artifacts or {}).items() if a.get("image")}
        return render_manifests(spec, env, ReleaseRef(release.version, images))

    def _commit(self, ctx: _Ctx, spec: ProjectSpec) -> str:
        images = {svc: a.get("image", "") for svc, a in (ctx.release.artifacts or {}).items() if a.get("image")}
        message = CommitMessage(project=ctx.project, environment=ctx.env, release=ctx.release.version,
                                actor=ctx.actor, reason=ctx.reason or f"{ctx.kind} {ctx.release.version}",
                                deployment=str(ctx.id), action=ctx.kind, strategy=ctx.strategy)
        return self.gitops.commit_environment(ctx.project, spec, ctx.env, ReleaseRef(ctx.release.version, images),
                                              message, ctx.gitops_url)

    # ---- running: observe, plan, act ------------------------------------------------------------------------
    async def _step(self, ctx: _Ctx, engine: Engine) -> Requeue | None:
        now = time.time()
        strategy = ctx.state.get("strategy", "rolling")
        spec = await asyncio.to_thread(self._spec, ctx, ctx.release)
        config = rollout_config(spec, ctx.env, strategy)
        rollout = rollout_from_dict(ctx.state["rollout"])
        rollout, commands_done = self._apply_commands(rollout, ctx.state.get("commands", []), now)
        new = self._render(spec, ctx.env, ctx.release)
        stable = None
        if ctx.previous is not None:
            prev_spec = await asyncio.to_thread(self._spec, ctx, ctx.previous)
            stable = self._render(prev_spec, ctx.env, ctx.previous)
        status = await engine.status(ctx.ref)
        if any(c.get("action") == "abort" for c in ctx.state.get("commands", [])):
            verdict, signals = None, ctx.state.get("signals", {})  # a person decided: act now, judge later
        else:
            verdict, signals = await self._judge(ctx, engine, spec, rollout, now)
        ready, desired = new_replicas(status, strategy, ctx.release.version)
        observation = Observation(new_ready=ready, new_desired=max(1, desired), weights=ctx.state.get("weights"),
                                  verdict=verdict, stable_revision=stable_revision(status),
                                  rolled_out=rolled_out(status, ctx.release.version))
        step = plan_next_step(rollout, observation, now, config)
        weights = await self._act(ctx, engine, step, new, stable)
        state = {**ctx.state, "rollout": rollout_to_dict(step.state), "commands": [],
                 "commands_done": (ctx.state.get("commands_done", []) + commands_done)[-20:],
                 "signals": signals, "last_step": type(step).__name__, "observed_at": now}
        if weights is not None:
            state["weights"] = weights
        if not self._save(ctx, state=state):
            return Requeue(after=0.05)
        if isinstance(step, Done):
            return await self._finish(ctx, engine, step, new)
        if isinstance(step, RollBack) and ctx.status == "running":
            await asyncio.to_thread(self._move, ctx, "failed", step.reason, verdict=step.reason)
        return Requeue(after=max(0.2, min(step.wait or config.check_interval_seconds, 5.0)))

    def _apply_commands(self, rollout: Any, commands: list[dict[str, Any]], now: float) -> tuple[Any, list[Any]]:
        done = []
        for command in commands:
            action = command.get("action")
            try:
                if action == "pause":
                    rollout = pause(rollout, now)
                elif action == "resume":
                    rollout = resume(rollout, now)
                elif action == "abort":
                    rollout = abort(rollout, now, command.get("reason") or "aborted by user")
                done.append({**command, "result": "applied"})
            except IllegalTransition as exc:
                done.append({**command, "result": str(exc)})
        return rollout, done

    async def _judge(self, ctx: _Ctx, engine: Engine, spec: ProjectSpec, rollout: Any,
                     now: float) -> tuple[Verdict | None, dict[str, Any]]:
        """Canary against stable serving at the same time, per routed service; the worst verdict counts."""
        if rollout.strategy == "rolling" or rollout.new_started_at is None or ctx.previous is None:
            return None, {}
        window = min(SIGNAL_WINDOW_MAX, max(1.0, now - rollout.new_started_at))
        verdicts: list[Verdict] = []
        signals: dict[str, Any] = {}
        for service in ctx.state.get("services", []):
            canary = await engine.signals(ctx.ref, service, ctx.release.version, window)
            base = await engine.signals(ctx.ref, service, ctx.previous.version, window)
            signals[service] = {v.version: {"requests": v.requests, "errors": v.errors, "rate": round(v.rate, 3),
                                            "latency_p95": v.latency_p95} for v in (canary, base)}
            if canary.requests == 0 and base.requests == 0:
                continue  # no traffic to this service at all: nothing to judge it on
            verdicts.append(judge(sample(canary), sample(base), judge_config(spec, service)))
        if not verdicts:
            return None, signals
        order = {"fail": 0, "inconclusive": 1, "pass": 2}
        return min(verdicts, key=lambda v: order[v.outcome]), signals

    async def _act(self, ctx: _Ctx, engine: Engine, step: Any, new: list[dict[str, Any]],
                   stable: list[dict[str, Any]] | None) -> dict[str, int] | None:
        """Carry out one step on the engine; returns the route weights now in force (None: unchanged)."""
        services = ctx.state.get("services", [])
        rev = ctx.gitops_commit
        if isinstance(step, RollingUpdate):
            await engine.apply(ctx.ref, new, revision=rev)
            return None
        if isinstance(step, StartCanary | StartPreview):
            await engine.apply(ctx.ref, mf.mixed(stable or [], new, dict(ALL_STABLE)), revision=rev)
            return dict(ALL_STABLE)
        if isinstance(step, SetWeights | SwitchTraffic):
            for service in services:
                await engine.set_weights(ctx.ref, service, step.weights)
            return dict(step.weights)
        if isinstance(step, Promote | ScaleDownOld):
            to_canary = {"stable": 0, "canary": 100}
            await engine.apply(ctx.ref, mf.mixed(new, new, to_canary), revision=rev)
            return to_canary
        if isinstance(step, RollBack):
            for service in services:
                await engine.set_weights(ctx.ref, service, dict(ALL_STABLE))
            if stable is not None:
                await engine.apply(ctx.ref, mf.with_weights(stable, dict(ALL_STABLE)),
                                   revision=f"rollback:{ctx.previous.version if ctx.previous else ''}")
            else:
                await engine.delete(ctx.ref)
            if not ctx.state.get("reverted") and ctx.gitops_commit:
                reverted = await asyncio.to_thread(self._revert, ctx, step.reason)
                ctx.state["reverted"] = reverted
            return dict(ALL_STABLE)
        if isinstance(step, Pause):
            ctx.state["pause_reason"] = step.reason
        return None

    def _revert(self, ctx: _Ctx, reason: str) -> str:
        repo = self.gitops.repo(ctx.project, ctx.gitops_url)
        message = CommitMessage(project=ctx.project, environment=ctx.env,
                                release=ctx.previous.version if ctx.previous else "", actor=self.actor,
                                reason=reason, deployment=str(ctx.id), action="rollback")
        return repo.revert(ctx.gitops_commit, message)

    async def _finish(self, ctx: _Ctx, engine: Engine, step: Done, new: list[dict[str, Any]]) -> Requeue | None:
        if step.outcome == "promoted":
            await engine.apply(ctx.ref, mf.with_weights(new, dict(ALL_STABLE)), revision=ctx.gitops_commit)
            await asyncio.to_thread(self._move, ctx, "success", f"{ctx.release.version} is live")
            return None
        if ctx.status == "running":
            reason = rollout_from_dict(ctx.state["rollout"]).reason or step.outcome
            await asyncio.to_thread(self._move, ctx, "failed", reason, verdict=reason)
            ctx.status = "failed"
        await asyncio.to_thread(self._move, ctx, "rolled_back",
                                f"all traffic on {ctx.previous.version if ctx.previous else 'nothing'}; "
                                f"GitOps commit reverted", revert=ctx.state.get("reverted", ""))
        return None


async def auto_deploy(db: Database, runner: Any, project: str, release_id: int, actor: str) -> None:
    """A new release goes to the environment its branch maps to, when that environment deploys automatically."""

    def create() -> int | None:
        with db.session() as s:
            release = s.get(Release, release_id)
            run = s.get(PipelineRun, release.run_id) if release and release.run_id else None
            if release is None or run is None or not run.target_env:
                return None
            found = project_store.get_project(s, project)
            env = project_store.get_environment(s, found, run.target_env)
            if not env.auto_deploy or found.status != "active" or env.status not in ("active", "updating"):
                return None
            try:
                dep = dep_store.create_deployment(s, found, env, release=release.version, strategy=env.strategy,
                                                  actor=actor, reason=f"auto-deploy of {run.branch}@"
                                                                      f"{release.version}")
            except Conflict as exc:
                record(s, actor=actor, kind="deployment.skipped", subject=f"release/{project}/{release.version}",
                       project=project, environment=env.name, data={"reason": exc.message})
                return None
            return dep.id

    dep_id = await asyncio.to_thread(create)
    if dep_id is not None:
        runner.enqueue(NAME, dep_id)
