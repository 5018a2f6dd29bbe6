"""The sandbox never steps aside quietly: without bubblewrap steps are refused with the reason, and turning it off
on purpose is said at every start and on the settings page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from juanie.pipeline.executor import Executor
from juanie.pipeline.logs import LogStore
from juanie.pipeline.model import PipelineSpec, Stage, Step
from juanie.sandbox import OFF_WARNING, Sandbox
from tests.server_support import start_server
from tests.support import wait_until


async def test_without_a_working_bubblewrap_steps_are_refused_with_the_reason(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    broken = Sandbox(bwrap=str(tmp_path / "no-such-bwrap"))
    executor = Executor(tmp_path / "ws", tmp_path / "cache", tmp_path / "art", sandbox=broken)
    logs = LogStore(tmp_path / "logs")
    step = Step("build", ('touch "$JUANIE_ARTIFACTS_DIR/ran"',))
    result = await executor.run("r1", source, PipelineSpec((Stage("build", (step,)),)), log_sink=logs.writer("r1"))
    assert result.state == "failed" and result.steps["build/build"].state == "failed"
    text = "\n".join(line.text for line in logs.read("r1"))
    assert "refusing to run untrusted code unsandboxed" in text and "bubblewrap" in text
    assert "JUANIE_SANDBOX=off" in text
    assert not (tmp_path / "art" / "r1" / "ran").exists()  # the command never ran


async def test_steps_run_unsandboxed_only_when_the_operator_says_so(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    secret = tmp_path / "outside.txt"
    secret.write_text("visible")
    logs = LogStore(tmp_path / "logs")
    step = Step("peek", (f"cat {secret}",))
    spec = PipelineSpec((Stage("build", (step,)),))
    sandboxed = Executor(tmp_path / "ws", tmp_path / "cache", tmp_path / "art", sandbox=Sandbox())
    assert (await sandboxed.run("r1", source, spec, log_sink=logs.writer("r1"))).state == "failed"
    trusted = Executor(tmp_path / "ws", tmp_path / "cache", tmp_path / "art", sandbox=Sandbox("off"))
    assert (await trusted.run("r2", source, spec, log_sink=logs.writer("r2"))).state == "succeeded"
    assert "visible" in [line.text for line in logs.read("r2", "build/peek")]


@pytest.mark.slow
def test_a_server_with_the_sandbox_off_warns_at_start_and_on_the_settings_page(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", env={"JUANIE_SANDBOX": "off"})
    try:
        wait_until(lambda: OFF_WARNING in server.log(), timeout=30, message="the warning in the server log")
        assert server.ok("GET", "/api/system")["sandbox"]["warning"] == OFF_WARNING
        with httpx.Client(base_url=server.url) as browser:
            browser.post("/api/ui/session", headers={"Authorization": f"Bearer {server.token}"}).raise_for_status()
            page = browser.get("/settings/tokens")
        assert page.status_code == 200 and 'data-test="sandbox-off"' in page.text
    finally:
        server.stop()


def test_a_bad_sandbox_setting_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "JUANIE_SANDBOX": "bogus"}
    result = subprocess.run([sys.executable, "-m", "juanie.cli.main", "up", "--foreground", "--port", "1",
                             "--data-dir", str(tmp_path / "data")], env=env, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode != 0
    assert "JUANIE_SANDBOX='bogus': expected one of bwrap, off" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "server.pid").exists()
