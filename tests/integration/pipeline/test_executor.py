"""The executor with real processes: stages, needs, parallel steps, failures, timeouts, cancel, secrets."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from juanie.pipeline.executor import Executor, StepChange
from juanie.pipeline.logs import LogStore
from juanie.pipeline.model import PipelineSpec, Stage, Step
from tests.integration.pipeline.pipeline_helpers import processes_with_env, read_pids, spec


def barrier(me: str, other: str) -> str:
    """A step that announces itself and succeeds only if `other` runs at the same time (bounded wait); the steps
    of one run share its TMPDIR, and nothing outside their sandbox."""
    return (
        f'touch "$TMPDIR/{me}"; for i in $(seq 1 600); do '
        f'[ -e "$TMPDIR/{other}" ] && echo met {other} && exit 0; sleep 0.05; done; echo never met; exit 1'
    )


# Steps see only their own directories, and their pids are those of their own pid namespace: they note each
# process they start in the run's artifacts directory, and the test looks for survivors on the host by the run's id.
PIDS = 'export PIDS="$JUANIE_ARTIFACTS_DIR"; '


async def test_stages_with_needs_and_parallel_steps(
    executor: Executor, source_dir: Path, logs: LogStore, tmp_path: Path
) -> None:
    pipeline = PipelineSpec(
        (
            Stage(
                "build",
                (Step("a", (barrier("a", "b"),), timeout=60), Step("b", (barrier("b", "a"),), timeout=60)),
            ),
            Stage("lint", (Step("ruff", ("echo lint ok",)),), needs=()),
            Stage("test", (Step("unit", ("test -f app.py && python3 app.py",)),), needs=("build", "lint")),
        )
    )
    changes: list[StepChange] = []
    result = await executor.run(
        "r1",
        source_dir,
        pipeline,
        log_sink=logs.writer("r1"),
        on_step_change=changes.append,
    )
    assert result.state == "succeeded", logs.read("r1")
    assert {k: s.state for k, s in result.steps.items()} == {
        "build/a": "succeeded",
        "build/b": "succeeded",
        "lint/ruff": "succeeded",
        "test/unit": "succeeded",
    }
    assert [ln.text for ln in logs.read("r1", "test/unit") if ln.stream == "stdout"] == ["hello from app"]
    assert "met b" in [ln.text for ln in logs.read("r1", "build/a")]
    unit_start = next(c.at for c in changes if c.key == "test/unit" and c.state == "running")
    assert unit_start >= max(result.steps["build/a"].finished, result.steps["lint/ruff"].finished)
    assert [c.state for c in changes if c.key == "test/unit"] == ["running", "succeeded"]
    assert not (tmp_path / "ws" / "r1").exists()  # the workspace is removed after the run


async def test_failing_test_step_fails_run_and_skips_later_stages(
    executor: Executor, source_dir: Path, logs: LogStore
) -> None:
    pipeline = spec(
        ("build", [("compile", "echo compiled")]),
        (
            "test",
            [
                (
                    "unit",
                    "echo 'running 3 tests'; echo 'FAILED test_checkout: expected 200, got 500' >&2; exit 3",
                )
            ],
        ),
        ("package", [("release", "echo should not run")]),
    )
    result = await executor.run("r2", source_dir, pipeline, log_sink=logs.writer("r2"))
    assert result.state == "failed"
    assert result.steps["test/unit"].state == "failed" and result.steps["test/unit"].exit_code == 3
    assert result.steps["package/release"].state == "skipped"
    stderr = [ln.text for ln in logs.read("r2", "test/unit") if ln.stream == "stderr"]
    assert stderr == ["FAILED test_checkout: expected 200, got 500"]
    assert logs.read("r2", "package/release") == []
    found = logs.search("r2", "EXPECTED 200")  # case-insensitive; the echoed command matches too
    assert [(ln.step, ln.stream) for ln in found] == [("test/unit", "system"), ("test/unit", "stderr")]


async def test_timeout_kills_the_whole_process_tree(
    executor: Executor, source_dir: Path, logs: LogStore, tmp_path: Path
) -> None:
    tree = PIDS + (
        'echo $$ > "$PIDS/leader.pid"; '
        'bash -c \'echo $$ > "$PIDS/child.pid"; '
        'sh -c "echo \\$\\$ > $PIDS/grandchild.pid; sleep 300" & '
        'setsid sh -c "echo \\$\\$ > $PIDS/escapee.pid; sleep 300" & wait\' & wait'
    )
    pipeline = PipelineSpec((Stage("test", (Step("hang", (tree,), timeout=1.5),)),))
    result = await executor.run("r3", source_dir, pipeline, log_sink=logs.writer("r3"))
    step = result.steps["test/hang"]
    assert result.state == "failed" and step.state == "failed" and step.timed_out
    assert len(read_pids(tmp_path / "artifacts" / "r3")) == 4  # all four had started, the escapee too
    assert processes_with_env("JUANIE_RUN_ID", "r3") == []
    assert any("timed out after 1.5s" in ln.text for ln in logs.read("r3", "test/hang"))


async def test_background_jobs_do_not_outlive_their_step(executor: Executor, source_dir: Path, tmp_path: Path) -> None:
    pipeline = spec(("build", [("bg", PIDS + 'sleep 300 & echo $! > "$PIDS/bg.pid"; echo done')]))
    result = await executor.run("r4", source_dir, pipeline)
    assert result.state == "succeeded"
    assert len(read_pids(tmp_path / "artifacts" / "r4")) == 1
    assert processes_with_env("JUANIE_RUN_ID", "r4") == []


async def test_cancel_stops_running_step_and_cancels_the_rest(
    executor: Executor, source_dir: Path, tmp_path: Path
) -> None:
    cancel = asyncio.Event()

    async def cancel_once_started() -> None:  # the step has started its long sleep: cancel the run
        while not read_pids(tmp_path / "artifacts" / "r5"):
            await asyncio.sleep(0.05)
        cancel.set()

    pipeline = spec(("test", [("long", PIDS + 'echo $$ > "$PIDS/long.pid"; sleep 300')]), ("package", [("p", "true")]))
    canceller = asyncio.create_task(cancel_once_started())
    result = await asyncio.wait_for(executor.run("r5", source_dir, pipeline, cancel_event=cancel), timeout=60)
    canceller.cancel()
    assert result.state == "cancelled"
    assert result.steps["test/long"].state == "cancelled"
    assert result.steps["package/p"].state == "cancelled"
    assert len(read_pids(tmp_path / "artifacts" / "r5")) == 1
    assert processes_with_env("JUANIE_RUN_ID", "r5") == []


async def test_secret_values_never_reach_stored_logs(
    executor: Executor, source_dir: Path, logs: LogStore, tmp_path: Path
) -> None:
    token = "tok-9f8e7d6c5b4a"
    encoded = base64.b64encode(token.encode()).decode()
    pipeline = spec(
        (
            "build",
            [
                (
                    "leak",
                    'echo "token is $API_TOKEN"; printf %s "$API_TOKEN" | base64; echo "err $API_TOKEN" >&2; '
                    'test "$API_TOKEN" = tok-9f8e7d6c5b4a && echo value-ok',
                )
            ],
        )
    )
    changes: list[StepChange] = []
    result = await executor.run(
        "r6",
        source_dir,
        pipeline,
        secrets={"API_TOKEN": token},
        log_sink=logs.writer("r6"),
        on_step_change=changes.append,
    )
    assert result.state == "succeeded"
    texts = [ln.text for ln in logs.read("r6")]
    assert "token is ***" in texts and "err ***" in texts and "value-ok" in texts and "***" in texts
    for f in (tmp_path / "logs" / "r6").iterdir():
        data = f.read_bytes()
        assert token.encode() not in data and encoded.encode() not in data


async def test_artifacts_and_image_directive(executor: Executor, source_dir: Path) -> None:
    pipeline = PipelineSpec(
        (
            Stage(
                "package",
                (
                    Step(
                        "report",
                        ("mkdir -p out && echo coverage 91% > out/report.txt",),
                        artifacts=("out/*.txt",),
                    ),
                    Step(
                        "env",
                        (
                            'echo built > "$JUANIE_ARTIFACTS_DIR/built.txt"',
                            "echo ::juanie-image user=registry.local/shop/user:abc123",
                        ),
                    ),
                ),
            ),
        )
    )
    result = await executor.run("r7", source_dir, pipeline)
    assert result.state == "succeeded"
    assert result.artifacts == ["built.txt", "out/report.txt"]
    assert (result.artifacts_dir / "out" / "report.txt").read_text() == "coverage 91%\n"
    assert result.images == {"user": "registry.local/shop/user:abc123"}


async def test_step_environment_is_clean_and_cached(
    executor: Executor, source_dir: Path, logs: LogStore, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("JUANIE_SERVER_SECRET", "server-only-value")
    pipeline = PipelineSpec(
        (
            Stage(
                "build",
                (
                    Step(
                        "env",
                        (
                            'echo "home=$HOME" "pip=$PIP_CACHE_DIR" "ci=$CI" '
                            '"leak=${JUANIE_SERVER_SECRET:-none}" "mine=$MINE" "run=$JUANIE_RUN_ID" '
                            '"pwd=$(pwd)"',
                        ),
                        env={"MINE": "step-value"},
                    ),
                ),
            ),
        )
    )
    await executor.run("r8", source_dir, pipeline, log_sink=logs.writer("r8"), project="shop")
    line = next(ln.text for ln in logs.read("r8", "build/env") if ln.stream == "stdout")
    fields = dict(part.split("=", 1) for part in line.split())
    assert fields["home"] == str(tmp_path / "ws" / "r8" / ".home")
    assert fields["pip"] == str(tmp_path / "cache" / "shop" / "pip")
    assert (fields["ci"], fields["leak"], fields["mine"], fields["run"]) == (
        "true",
        "none",
        "step-value",
        "r8",
    )
    assert fields["pwd"] == str(tmp_path / "ws" / "r8" / "src")


async def test_checkout_failure_fails_the_run_with_a_reason(executor: Executor, logs: LogStore) -> None:
    def broken_checkout(dest: Path) -> None:
        raise RuntimeError("commit deadbeef not found")

    result = await executor.run("r9", broken_checkout, spec(("build", [("x", "true")])), log_sink=logs.writer("r9"))
    assert result.state == "failed"
    assert result.steps["build/x"].state == "skipped"
    assert any("commit deadbeef not found" in ln.text for ln in logs.read("r9"))


async def test_sequential_stage_skips_steps_after_a_failure(executor: Executor, source_dir: Path) -> None:
    pipeline = PipelineSpec(
        (
            Stage(
                "quality",
                (
                    Step("lint", ("exit 1",), allow_failure=True),
                    Step("types", ("exit 2",)),
                    Step("docs", ("true",)),
                ),
                parallel=False,
            ),
        )
    )
    result = await executor.run("r10", source_dir, pipeline)
    states = {k: (s.state, s.exit_code) for k, s in result.steps.items()}
    assert states == {
        "quality/lint": ("failed", 1),
        "quality/types": ("failed", 2),
        "quality/docs": ("skipped", None),
    }
    assert result.state == "failed"


async def test_a_failing_callback_still_ends_the_run_in_a_final_state(executor: Executor, source_dir: Path) -> None:
    def broken_sink(step: str, line) -> None:
        if "boom" in line.text:
            raise OSError("disk full")

    result = await executor.run(
        "r11", source_dir, spec(("build", [("x", "echo boom")]), ("test", [("y", "true")])), log_sink=broken_sink
    )
    assert result.state == "failed" and "disk full" in result.error
    assert {s.state for s in result.steps.values()} <= {"failed", "skipped", "succeeded"}


async def test_a_timed_out_step_gets_sigterm_first_even_inside_its_sandbox(
    executor: Executor, source_dir: Path, logs: LogStore
) -> None:
    # The step, not bubblewrap (which would die of SIGTERM and take the step down with SIGKILL), gets the signal.
    graceful = "trap 'sleep 0.5; echo got SIGTERM; exit 3' TERM; echo started; while true; do sleep 0.05; done"
    pipeline = PipelineSpec((Stage("test", (Step("slow", (graceful,), timeout=1.5),)),))
    result = await executor.run("r9", source_dir, pipeline, log_sink=logs.writer("r9"))
    assert result.steps["test/slow"].timed_out
    assert "got SIGTERM" in [ln.text for ln in logs.read("r9", "test/slow") if ln.stream == "stdout"]
    assert processes_with_env("JUANIE_RUN_ID", "r9") == []
