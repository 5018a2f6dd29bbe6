"""Fixtures for pipeline tests: a source tree, an executor with tmp roots, and a process-leak guard."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from juanie.pipeline.executor import Executor
from juanie.pipeline.logs import LogStore


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    src = tmp_path / "source"
    src.mkdir()
    (src / "app.py").write_text("print('hello from app')\n")
    (src / "requirements.txt").write_text("")
    return src


@pytest.fixture
def executor(tmp_path: Path) -> Executor:
    return Executor(tmp_path / "ws", tmp_path / "cache", tmp_path / "artifacts", max_parallel=2, kill_grace=2.0)


@pytest.fixture
def logs(tmp_path: Path) -> LogStore:
    return LogStore(tmp_path / "logs")


@pytest.fixture(autouse=True)
def no_leftover_processes(tmp_path: Path):
    """Fail the test if a step process survived, and kill it so nothing leaks into the next test."""
    yield
    leftovers = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("JUANIE_WORKSPACE", "").startswith(str(tmp_path)):
                leftovers.append(proc)
        except psutil.Error:
            continue
    for proc in leftovers:
        try:
            os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.kill()
        except psutil.Error:
            pass
    assert not leftovers, f"step processes survived the test: {[p.pid for p in leftovers]}"
