"""Concurrency limits, queueing, live log following, checkout from a source repository, crash recovery."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from juanie.gitops.source import SourceRepo
from juanie.pipeline.executor import Executor, StepChange
from juanie.pipeline.logs import LogStore
from tests.integration.pipeline.pipeline_helpers import (
    async_wait_until,
    processes_with_env,
    read_pids,
    spec,
    wait_until,
)


def _interval(logs: LogStore, run_id: str, step: str) -> tuple[float, float]:
    lines = [ln for ln in logs.read(run_id, step) if ln.stream == "stdout"]
    return lines[0].ts, lines[-1].ts


async def test_max_parallel_one_serialises_runs(source_dir: Path, logs: LogStore, tmp_path: Path) -> None:
    ex = Executor(tmp_path / "ws", tmp_path / "cache", tmp_path / "art", max_parallel=1, max_per_project=5)
    work = spec(("build", [("work", "echo begin; sleep 0.4; echo end")]))
    runs = [ex.run(f"s{i}", source_dir, work, log_sink=logs.writer(f"s{i}"), project=f"p{i}") for i in range(3)]
    results = await asyncio.gather(*runs)
    assert [r.state for r in results] == ["succeeded"] * 3
    spans = sorted(_interval(logs, f"s{i}", "build/work") for i in range(3))
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, f"runs overlapped: {spans}"
    queued = [ln.text for ln in logs.read("s2", "")]
    assert queued[0].startswith("queued")


async def test_per_project_limit_queues_same_project_but_not_others(
    source_dir: Path, logs: LogStore, tmp_path: Path
) -> None:
    ex = Executor(tmp_path / "ws", tmp_path / "cache", tmp_path / "art", max_parallel=3, max_per_project=1)
    # Runs of different projects must overlap: each waits (bounded) until the test, seeing both running at once,
    # lets them go. Their sandboxes share nothing, so the signal comes from outside, into each one's TMPDIR.
    wait_go = 'for i in $(seq 1 1200); do [ -e "$TMPDIR/go" ] && echo met && exit 0; sleep 0.05; done; exit 1'
    running: set[str] = set()

    def note(change: StepChange) -> None:
        if change.state == "running":
            running.add(change.run_id)
            if {"a1", "b1"} <= running:
                for run in ("a1", "b1"):
                    (tmp_path / "ws" / run / ".tmp" / "go").touch()

    a = ex.run(
        "a1",
        source_dir,
        spec(("b", [("s", wait_go)])),
        log_sink=logs.writer("a1"),
        project="alpha",
        on_step_change=note,
    )
    b = ex.run(
        "b1", source_dir, spec(("b", [("s", wait_go)])), log_sink=logs.writer("b1"), project="beta", on_step_change=note
    )
    same = [
        ex.run(
            f"g{i}",
            source_dir,
            spec(("b", [("s", "echo begin; sleep 0.3; echo end")])),
            log_sink=logs.writer(f"g{i}"),
            project="gamma",
        )
        for i in range(2)
    ]
    results = await asyncio.gather(a, b, *same)
    assert [r.state for r in results] == ["succeeded"] * 4
    (_, end0), (start1, _) = sorted([_interval(logs, "g0", "b/s"), _interval(logs, "g1", "b/s")])
    assert end0 <= start1


async def test_cancel_while_queued_never_starts(source_dir: Path, tmp_path: Path) -> None:
    ex = Executor(tmp_path / "ws", tmp_path / "cache", tmp_path / "art", max_parallel=1)
    release = tmp_path / "ws" / "first" / ".tmp" / "release"
    blocker = ex.run("first", source_dir, spec(("b", [("s", 'while [ ! -e "$TMPDIR/release" ]; do sleep 0.05; done')])))
    first = asyncio.create_task(blocker)
    cancel = asyncio.Event()
    marker = tmp_path / "art" / "second" / "ran"
    second = asyncio.create_task(
        ex.run("second", source_dir, spec(("b", [("s", 'touch "$JUANIE_ARTIFACTS_DIR/ran"')])), cancel_event=cancel)
    )
    await async_wait_until(lambda: ex.limiter.queued() >= 1)
    cancel.set()
    result = await asyncio.wait_for(second, 30)
    release.touch()
    assert (await asyncio.wait_for(first, 30)).state == "succeeded"
    assert result.state == "cancelled" and result.started is None
    assert not marker.exists()


async def test_follow_streams_lines_live_and_ends_with_the_run(
    source_dir: Path, logs: LogStore, tmp_path: Path
) -> None:
    ex = Executor(tmp_path / "ws", tmp_path / "cache", tmp_path / "art")
    go = tmp_path / "ws" / "f1" / ".tmp" / "go"
    writer = logs.writer("f1")
    step = 'echo first; while [ ! -e "$TMPDIR/go" ]; do sleep 0.05; done; echo second'
    run = asyncio.create_task(ex.run("f1", source_dir, spec(("b", [("s", step)])), log_sink=writer))
    seen: list[str] = []
    async for line in logs.follow("f1", "b/s", poll_interval=0.05, timeout=60):
        if line.stream == "stdout":
            seen.append(line.text)
            if line.text == "first":
                assert not run.done()  # streamed while the step is still running
                go.touch()
    result = await run
    assert logs.step_state("f1", "b/s") == "succeeded" and logs.is_final("f1")
    assert seen == ["first", "second"] and result.state == "succeeded"
    assert [ln.text for ln in logs.read("f1", "b/s") if ln.stream == "stdout"] == ["first", "second"]


async def test_run_from_a_source_repository_checkout(tmp_path: Path, logs: LogStore) -> None:
    repo = tmp_path / "app"
    repo.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@x",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@x",
    }
    for cmd in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "root"]):
        subprocess.run(["git", *cmd], cwd=repo, env=env, check=True)
    (repo / "VERSION").write_text("1.2.3\n")
    subprocess.run(["git", "add", "VERSION"], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "version"], cwd=repo, env=env, check=True)
    source = SourceRepo(repo, tmp_path / "mirrors")
    sha = source.fetch()["main"]
    ex = Executor(tmp_path / "ws", tmp_path / "cache", tmp_path / "art")
    result = await ex.run(
        "c1",
        lambda dest: source.checkout(sha, dest),
        spec(("b", [("s", "cat VERSION; ls -A")])),
        log_sink=logs.writer("c1"),
    )
    assert result.state == "succeeded"
    assert [ln.text for ln in logs.read("c1", "b/s") if ln.stream == "stdout"] == ["1.2.3", "VERSION"]


_CRASHING_SERVER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from juanie.pipeline.executor import Executor
    from juanie.pipeline.model import PipelineSpec, Stage, Step

    root, src = Path(sys.argv[1]), Path(sys.argv[2])
    cmd = 'P=$JUANIE_ARTIFACTS_DIR; echo $$ > $P/leader.pid; sh -c "echo \\$\\$ > $P/child.pid; sleep 300"'
    step = Step("long", (cmd,))
    ex = Executor(root / "ws", root / "cache", root / "art")
    asyncio.run(ex.run("crashed-run", src, PipelineSpec((Stage("test", (step,)),)), project="shop"))
""")


def test_recover_reports_a_run_whose_server_died_and_nothing_of_it_survives(source_dir: Path, tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_SERVER, str(tmp_path), str(source_dir)],
        start_new_session=True,
    )
    try:
        wait_until(lambda: len(read_pids(tmp_path / "art" / "crashed-run")) == 2, timeout=60)
        assert processes_with_env("JUANIE_RUN_ID", "crashed-run")
        os.kill(server.pid, signal.SIGKILL)  # only the server dies; its steps die with it (--die-with-parent)
        server.wait(30)
        wait_until(lambda: processes_with_env("JUANIE_RUN_ID", "crashed-run") == [], timeout=30)
        ex = Executor(tmp_path / "ws", tmp_path / "cache", tmp_path / "art")
        recovered = ex.recover()
        assert [(r.run_id, r.project) for r in recovered] == [("crashed-run", "shop")]
        assert not (tmp_path / "ws" / "crashed-run").exists()
        assert ex.recover() == []
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(30)
