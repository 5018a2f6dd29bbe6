"""The local pipeline executor: a fresh workspace per run, every step a real process tree, logs streamed live.

The executor knows nothing of the database: the caller passes a `log_sink` (where masked lines go), an
`on_step_change` callback (what the UI and events see) and a `cancel_event`. Each run leaves a marker file in
its workspace while it runs, so after a crash `recover()` can end what is left of it and report the run,
which the caller then marks failed — a run is never left "running" forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from juanie.pipeline import workspace as ws
from juanie.pipeline.limiter import ConcurrencyLimiter, RunCancelled
from juanie.pipeline.logs import RUN_STEP, LogLine
from juanie.pipeline.model import (
    FINAL_STEP_STATES,
    Masker,
    PipelineSpec,
    RunState,
    Stage,
    Step,
    StepState,
    image_from_line,
    resolved_needs,
    run_outcome,
    stage_outcome,
    step_key,
)
from juanie.pipeline.process import run_process
from juanie.sandbox import Sandbox, SandboxError

Source = Path | Callable[[Path], Any]
"""A directory to copy, or a function that writes the checkout into the directory it is given."""
LogSink = Callable[[str, LogLine], Any]
"""Called with (step key, masked line); "" is the run itself. If the sink also has `end_step(key, state)`
and `end_run(state)` (as `logs.RunLogWriter` does), the executor calls them so followers know when to stop."""


@dataclass(frozen=True)
class StepChange:
    """One step changed state (sent to `on_step_change`)."""

    run_id: str
    key: str
    stage: str
    step: str
    state: StepState
    at: float
    exit_code: int | None = None
    message: str = ""


@dataclass
class StepResult:
    key: str
    stage: str
    step: str
    state: StepState = "queued"
    exit_code: int | None = None
    started: float | None = None
    finished: float | None = None
    timed_out: bool = False

    @property
    def duration(self) -> float | None:
        return None if self.started is None or self.finished is None else self.finished - self.started


@dataclass
class RunResult:
    run_id: str
    state: RunState
    steps: dict[str, StepResult]
    queued_at: float
    started: float | None = None
    finished: float | None = None
    artifacts_dir: Path | None = None
    artifacts: list[str] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)
    workspace: Path | None = None
    error: str = ""


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


class Executor:
    """Runs pipelines on this host. One instance per server; it owns the concurrency limits."""

    def __init__(
        self,
        workspace_root: Path | str,
        cache_root: Path | str,
        artifacts_root: Path | str,
        max_parallel: int = 2,
        max_per_project: int = 1,
        max_parallel_steps: int = 4,
        kill_grace: float = 5.0,
        keep_workspace: bool = False,
        *,
        sandbox: Sandbox | None = None,
        releases_root: Path | str | None = None,
    ):
        self.sandbox = sandbox or Sandbox.from_env()
        # Where the packager writes releases: each step may write its own project's directory there.
        self.releases_root = Path(releases_root) if releases_root is not None else None
        self.workspace_root = Path(workspace_root)
        self.cache_root = Path(cache_root)
        self.artifacts_root = Path(artifacts_root)
        self.limiter = ConcurrencyLimiter(max_parallel, max_per_project)
        self.max_parallel_steps = max_parallel_steps
        self.kill_grace = kill_grace
        self.keep_workspace = keep_workspace
        self._step_slots: asyncio.Semaphore | None = None

    def recover(self) -> list[ws.RecoveredRun]:
        """After a restart: end the processes of runs that were running when the server died, report them."""
        return ws.recover(self.workspace_root)

    async def run(
        self,
        run_id: str,
        source: Source,
        spec: PipelineSpec,
        env: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        log_sink: LogSink | None = None,
        on_step_change: Callable[[StepChange], Any] | None = None,
        cancel_event: asyncio.Event | None = None,
        *,
        project: str = "default",
        on_run_change: Callable[[str, RunState], Any] | None = None,
    ) -> RunResult:
        """Queue, then execute `spec` on a fresh checkout; return every step's outcome. Never raises for a
        failing step, a timeout or a cancel — those are states in the result."""
        ws.check_name("run id", run_id)
        ws.check_name("project", project)
        cancel_event = cancel_event or asyncio.Event()
        ctx = _RunContext(
            self,
            run_id,
            project,
            spec,
            source,
            dict(env or {}),
            dict(secrets or {}),
            log_sink,
            on_step_change,
            cancel_event,
        )
        result = RunResult(
            run_id=run_id,
            state="queued",
            queued_at=time.time(),
            steps={
                step_key(s.name, st.name): StepResult(step_key(s.name, st.name), s.name, st.name)
                for s in spec.stages
                for st in s.steps
            },
        )
        ctx.result = result
        await ctx.system(
            f"queued (project {project}: {self.limiter.running(project)} running, "
            f"{self.limiter.queued(project)} waiting)"
        )
        try:
            async with self.limiter.slot(project, cancel_event):
                result.state, result.started = "running", time.time()
                if on_run_change:
                    await _maybe_await(on_run_change(run_id, "running"))
                await ctx.execute()
        except RunCancelled:
            for sr in result.steps.values():
                sr.state = "cancelled"
            await ctx.system("cancelled while queued")
        except Exception as exc:  # a bug or a failing callback must still end the run in a final state
            result.error = ctx.mask(f"internal error: {type(exc).__name__}: {exc}")
            for sr in result.steps.values():
                sr.state = {"running": "failed", "queued": "skipped"}.get(sr.state, sr.state)  # type: ignore[assignment]
            with contextlib.suppress(Exception):
                await ctx.system(result.error)
        result.finished = time.time()
        result.state = run_outcome(ctx.stage_states.values(), cancel_event.is_set())
        if result.error:
            result.state = "cancelled" if cancel_event.is_set() else "failed"
        await ctx.system(f"run {result.state}")
        end_run = getattr(log_sink, "end_run", None)
        if end_run is not None:
            await _maybe_await(end_run(result.state))
        if on_run_change:
            await _maybe_await(on_run_change(run_id, result.state))
        return result


class _RunContext:
    """Everything one run needs while it executes (kept off the Executor so runs never share state)."""

    def __init__(
        self,
        ex: Executor,
        run_id: str,
        project: str,
        spec: PipelineSpec,
        source: Source,
        env: dict[str, str],
        secrets: dict[str, str],
        log_sink: LogSink | None,
        on_change: Callable[[StepChange], Any] | None,
        cancel: asyncio.Event,
    ):
        self.ex, self.run_id, self.project, self.spec, self.source = ex, run_id, project, spec, source
        self.env, self.secrets, self.log_sink, self.on_change, self.cancel = (
            env,
            secrets,
            log_sink,
            on_change,
            cancel,
        )
        self.mask = Masker(secrets.values())
        self.result: RunResult
        self.stage_states: dict[str, StepState] = {}
        self.workspace = ex.workspace_root / run_id
        self.src = self.workspace / "src"
        self.artifacts = ex.artifacts_root / run_id
        self.cache = ex.cache_root / project

    async def log(self, step: str, stream: str, text: str) -> None:
        if self.log_sink is not None:
            await _maybe_await(self.log_sink(step, LogLine(time.time(), step, stream, self.mask(text))))

    async def system(self, text: str, step: str = RUN_STEP) -> None:
        await self.log(step, "system", text)

    async def change(self, sr: StepResult, state: StepState, message: str = "") -> None:
        sr.state = state
        end_step = getattr(self.log_sink, "end_step", None)
        if end_step is not None and state in FINAL_STEP_STATES and state != "skipped":
            await _maybe_await(end_step(sr.key, state))
        if self.on_change is not None:
            change = StepChange(
                self.run_id, sr.key, sr.stage, sr.step, state, time.time(), sr.exit_code, self.mask(message)
            )
            await _maybe_await(self.on_change(change))

    async def execute(self) -> None:
        try:
            await self.prepare()
        except Exception as exc:  # a checkout that fails fails the run, with the reason in its log
            self.result.error = self.mask(f"cannot prepare the workspace: {exc}")
            await self.system(self.result.error)
            for stage in self.spec.stages:
                self.stage_states[stage.name] = "skipped"
                for st in stage.steps:
                    await self.change(self.result.steps[step_key(stage.name, st.name)], "skipped")
            self.finish_workspace()
            return
        try:
            needs = resolved_needs(self.spec.stages)
            done: dict[str, asyncio.Future[StepState]] = {
                s.name: asyncio.get_running_loop().create_future() for s in self.spec.stages
            }
            await asyncio.gather(*(self.run_stage(s, needs[s.name], done) for s in self.spec.stages))
        finally:
            self.collect_artifacts()
            self.finish_workspace()

    def writable(self) -> tuple[Path, ...]:
        """What a step may write: its checkout, HOME and TMPDIR, the run's artifacts, the project's cache and
        releases. The run directory itself (with the marker the server trusts after a crash) stays the server's."""
        dirs = (self.src, self.workspace / ".home", self.workspace / ".tmp", self.artifacts, self.cache)
        if self.ex.releases_root is not None:
            dirs += (self.ex.releases_root / self.project,)
        return dirs

    async def prepare(self) -> None:
        if self.workspace.exists():
            shutil.rmtree(self.workspace)
        for d in (self.workspace / ".home", self.workspace / ".tmp", self.artifacts, self.cache / "pip"):
            d.mkdir(parents=True, exist_ok=True)
        ws.write_marker(self.workspace, self.run_id, self.project)
        source = self.source
        await self.system("checking out the source into a fresh workspace")
        if isinstance(source, Path):
            await asyncio.to_thread(
                shutil.copytree, source, self.src, symlinks=True, ignore=shutil.ignore_patterns(".git")
            )
        else:
            self.src.mkdir()
            await _maybe_await(await asyncio.to_thread(source, self.src))
        await asyncio.to_thread(self.hand_over)

    def hand_over(self) -> None:
        """Give the step-writable directories to the project's uid (the checkout was written by the server)."""
        sandbox = self.ex.sandbox
        for d in self.writable():
            sandbox.own(d, self.project, recursive=d.is_relative_to(self.workspace))

    async def run_stage(self, stage: Stage, needs: tuple[str, ...], done: dict[str, asyncio.Future[StepState]]) -> None:
        states = [await asyncio.shield(done[n]) for n in needs]
        results = [self.result.steps[step_key(stage.name, st.name)] for st in stage.steps]
        if self.cancel.is_set() or any(s != "succeeded" for s in states):
            final: StepState = "cancelled" if self.cancel.is_set() else "skipped"
            for sr in results:
                await self.change(
                    sr,
                    final,
                    f"not run: {', '.join(needs)} did not succeed"
                    if final == "skipped"
                    else "not run: the run was cancelled",
                )
            self.stage_states[stage.name] = final
            done[stage.name].set_result(final)
            return
        await self.system(f"stage {stage.name} started")
        if stage.parallel:
            await asyncio.gather(*(self.run_step(stage, st, sr) for st, sr in zip(stage.steps, results, strict=True)))
        else:
            for st, sr in zip(stage.steps, results, strict=True):
                failed = any(
                    r.state == "failed" and not s.allow_failure for s, r in zip(stage.steps, results, strict=True)
                )
                if failed or self.cancel.is_set():
                    await self.change(
                        sr,
                        "cancelled" if self.cancel.is_set() else "skipped",
                        "not run: an earlier step of the stage failed",
                    )
                    continue
                await self.run_step(stage, st, sr)
        outcome = stage_outcome((sr.state, st.allow_failure) for st, sr in zip(stage.steps, results, strict=True))
        self.stage_states[stage.name] = outcome
        await self.system(f"stage {stage.name} {outcome}")
        done[stage.name].set_result(outcome)

    def step_env(self, stage: Stage, step: Step) -> dict[str, str]:
        env = ws.base_env(self.workspace, self.cache)
        env.update(self.env)
        env.update(step.env)
        env.update(self.secrets)
        env.update(
            {
                "CI": "true",
                "JUANIE": "true",
                "JUANIE_RUN_ID": self.run_id,
                "JUANIE_PROJECT": self.project,
                "JUANIE_STAGE": stage.name,
                "JUANIE_STEP": step.name,
                "JUANIE_WORKSPACE": str(self.src),
                "JUANIE_ARTIFACTS_DIR": str(self.artifacts),
                "JUANIE_CACHE_DIR": str(self.cache),
                "JUANIE_STEP_TOKEN": uuid.uuid4().hex,
            }
        )
        return env

    async def run_step(self, stage: Stage, step: Step, sr: StepResult) -> None:
        ex = self.ex
        if ex._step_slots is None:
            ex._step_slots = asyncio.Semaphore(ex.max_parallel_steps * ex.limiter.max_global)
        async with ex._step_slots:
            if self.cancel.is_set():
                await self.change(sr, "cancelled", "not run: the run was cancelled")
                return
            sr.started = time.time()
            await self.change(sr, "running")
            key = sr.key
            for command in step.commands:
                await self.log(key, "system", f"$ {command}")
            lines: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()

            def on_line(stream: str, text: str) -> None:
                lines.put_nowait((stream, text))
                image = image_from_line(text, self.mask) if stream == "stdout" else None
                if image:
                    self.result.images[image[0]] = image[1]

            try:
                prepared = ex.sandbox.prepare(
                    ["bash", "--noprofile", "--norc", "-c", step.script],
                    project=self.project,
                    cwd=self.src,
                    writable=self.writable(),
                    readable=tuple(Path(p) for p in (ws.pip_config(),) if p),
                )
            except SandboxError as exc:
                sr.started = sr.finished = time.time()
                await self.log(key, "system", f"step failed: {exc}")
                await self.change(sr, "failed", str(exc))
                return
            writer = asyncio.create_task(self._write_lines(key, lines))
            try:
                outcome = await run_process(
                    prepared.full,
                    cwd=str(self.src),
                    env=self.step_env(stage, step),
                    on_line=on_line,
                    timeout=step.timeout,
                    cancel_event=self.cancel,
                    grace=ex.kill_grace,
                    on_start=lambda pgid: ws.add_pgid(self.workspace, pgid),
                )
            finally:
                lines.put_nowait(None)
                await writer
                ex.sandbox.release(prepared.limits)
            sr.finished, sr.exit_code, sr.timed_out = time.time(), outcome.exit_code, outcome.timed_out
            if outcome.cancelled:
                state: StepState = "cancelled"
                why = "cancelled"
            elif outcome.timed_out:
                state, why = "failed", f"timed out after {step.timeout:g}s"
            elif outcome.exit_code == 0:
                state, why = "succeeded", "exit 0"
            else:
                state, why = "failed", f"exit {outcome.exit_code}"
            if state == "failed" and step.allow_failure:
                why += " (allowed to fail)"
            if state == "succeeded" and step.artifacts:
                ws.copy_artifacts(self.src, self.artifacts, step.artifacts)
            await self.log(key, "system", f"step {state}: {why} in {sr.duration or 0:.1f}s")
            await self.change(sr, state, why)

    async def _write_lines(self, key: str, lines: asyncio.Queue[tuple[str, str] | None]) -> None:
        """Hand lines to the sink in order as they arrive (the sink may be async and slow)."""
        while (item := await lines.get()) is not None:
            await self.log(key, *item)

    def collect_artifacts(self) -> None:
        if self.artifacts.is_dir():
            self.result.artifacts_dir = self.artifacts
            self.result.artifacts = sorted(
                str(p.relative_to(self.artifacts)) for p in self.artifacts.rglob("*") if p.is_file()
            )

    def finish_workspace(self) -> None:
        if self.ex.keep_workspace:
            ws.mark_finished(self.workspace)
            self.result.workspace = self.workspace
        else:
            shutil.rmtree(self.workspace, ignore_errors=True)
