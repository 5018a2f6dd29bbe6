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
from juanie.pipeline.executor import Executor
from juanie.pipeline.logs import LogStore
from tests.integration.pipeline.pipeline_helpers import alive, async_wait_until, read_pids, spec, wait_until


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
    sync = tmp_path / "sync"
    sync.mkdir()
    # Runs of different projects must overlap: each waits (bounded) for the other to have started.
    meet = (
        'touch "$SYNC/$JUANIE_PROJECT"; for i in $(seq 1 600); do [ -e "$SYNC/$OTHER" ] && echo met && '
        "exit 0; sleep 0.05; done; exit 1"
    )
    a = ex.run(
        "a1",
        source_dir,
        spec(("b", [("s", meet)])),
        env={"SYNC": str(sync), "OTHER": "beta"},
        log_sink=logs.writer("a1"),
        project="alpha",
    )
    b = ex.run(
        "b1",
        source_dir,
        spec(("b", [("s", meet)])),
        env={"SYNC": str(sync), "OTHER": "alpha"},
        log_sink=logs.writer("b1"),
        project="beta",
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
    release = tmp_path / "release"
    blocker = ex.run("first", source_dir, spec(("b", [("s", f"while [ ! -e {release} ]; do sleep 0.05; done")])))
    first = asyncio.create_task(blocker)
    cancel = asyncio.Event()
    marker = tmp_path / "second-ran"
    second = asyncio.create_task(
        ex.run("second", source_dir, spec(("b", [("s", f"touch {marker}")])), cancel_event=cancel)
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
    go = tmp_path / "go"
    writer = logs.writer("f1")
    step = f"echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo second"
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

    root, src, pids = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    cmd = f'echo $$ > {pids}/leader.pid; sh -c "echo \\\\$\\\\$ > {pids}/child.pid; sleep 300"'
    step = Step("long", (cmd,))
    ex = Executor(root / "ws", root / "cache", root / "art")
    asyncio.run(ex.run("crashed-run", src, PipelineSpec((Stage("test", (step,)),)), project="shop"))
""")


def test_recover_ends_processes_of_a_run_whose_server_died(source_dir: Path, tmp_path: Path) -> None:
    piddir = tmp_path / "pids"
    piddir.mkdir()
    server = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_SERVER, str(tmp_path), str(source_dir), str(piddir)],
        start_new_session=True,
    )
    try:
        wait_until(lambda: len(read_pids(piddir)) == 2, timeout=60)
        os.killpg(server.pid, signal.SIGKILL)  # the server dies; the step lives on in its own session
        server.wait(30)
        pids = read_pids(piddir)
        assert all(alive(p) for p in pids)
        ex = Executor(tmp_path / "ws", tmp_path / "cache", tmp_path / "art")
        recovered = ex.recover()
        assert [(r.run_id, r.project) for r in recovered] == [("crashed-run", "shop")]
        assert recovered[0].killed >= 2
        assert [p for p in pids if alive(p)] == []
        assert not (tmp_path / "ws" / "crashed-run").exists()
        assert ex.recover() == []
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(30)
