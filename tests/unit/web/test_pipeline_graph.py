"""The run page's stage graph: waves, stage states and durations from the run's flat step list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from juanie.web.format import duration
from juanie.web.pipeline_graph import run_duration, stage_state, step_view, waves


def _step(key: str, state: str, **extra: object) -> dict[str, object]:
    stage, name = key.split("/", 1)
    return {"key": key, "stage": stage, "step": name, "state": state} | extra


def test_default_stages_read_build_then_test_and_quality_side_by_side_then_package() -> None:
    steps = [
        _step("build/build", "succeeded"),
        _step("test/unit", "running"),
        _step("test/lint", "queued"),
        _step("quality/quality", "queued"),
        _step("package/package", "queued"),
    ]
    graph = waves(steps, now=0)
    assert [[s.name for s in w.stages] for w in graph] == [["build"], ["test", "quality"], ["package"]]
    assert [s.name for s in graph[1].stages[0].steps] == ["unit", "lint"]


def test_other_stages_each_get_their_own_wave_in_order_unless_waves_are_given() -> None:
    steps = [_step("lint/lint", "queued"), _step("test/test", "queued"), _step("deploy/deploy", "queued")]
    assert [[s.name for s in w.stages] for w in waves(steps, 0)] == [["lint"], ["test"], ["deploy"]]
    explicit = [s | {"wave": w} for s, w in zip(steps, (0, 0, 1), strict=True)]
    assert [[s.name for s in w.stages] for w in waves(explicit, 0)] == [["lint", "test"], ["deploy"]]


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (["succeeded", "failed"], "failed"),
        (["succeeded", "running"], "running"),
        (["succeeded", "queued"], "running"),
        (["queued", "queued"], "queued"),
        (["succeeded", "skipped"], "succeeded"),
        (["skipped"], "skipped"),
        (["cancelled", "succeeded"], "cancelled"),
        ([], "queued"),
    ],
)
def test_stage_state(states: list[str], expected: str) -> None:
    assert stage_state(states) == expected


def test_durations_finished_running_and_not_started() -> None:
    done = step_view(_step("build/build", "succeeded", started=100.0, finished=165.5, exit_code=0), now=1000)
    running = step_view(_step("test/test", "running", started=990.0), now=1000)
    queued = step_view(_step("package/package", "queued"), now=1000)
    assert (done.duration, running.duration, queued.duration) == (65.5, 10.0, None)
    stage = waves(
        [
            _step("t/a", "succeeded", started=10.0, finished=20.0),
            _step("t/b", "succeeded", started=12.0, finished=40.0),
        ],
        now=50,
    )[0].stages[0]
    assert stage.duration == 30.0  # first start to last end: the steps overlapped


def test_malformed_steps_do_not_break_the_graph() -> None:
    view = step_view({"key": "build/x", "started": "not a time", "exit_code": True}, now=0)
    assert (view.stage, view.name, view.state, view.started, view.exit_code) == ("build", "x", "queued", None, None)
    assert waves(["junk", {"stage": "s"}], now=0)[0].stages[0].name == "s"  # type: ignore[list-item]
    iso = step_view(
        {
            "key": "a/b",
            "state": "succeeded",
            "started": "2026-01-01T00:00:00Z",
            "finished": "2026-01-01T00:00:02+00:00",
        },
        now=0,
    )
    assert iso.duration == 2.0


def test_run_duration_and_its_format() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert run_duration(start, start + timedelta(seconds=185), start) == 185
    assert run_duration(None, None, start) is None
    assert run_duration(start.replace(tzinfo=None), None, start + timedelta(seconds=3)) == 3
    assert [duration(v) for v in (0.42, 12.4, 185, 3725, None, -1)] == ["0.4s", "12s", "3m 05s", "1h 02m", "", ""]
