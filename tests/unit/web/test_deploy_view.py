"""The deployment page's rules: weight steps, which controls apply, verdicts and signals as shown."""

from __future__ import annotations

from typing import Any

import pytest

from juanie.delivery.plan import MANUAL_TRANSITIONS
from juanie.web.deploy_view import CONTROLS, control_applies, signal_rows, step_marks, verdict_rows, weight_plan


def _controls(dep: dict[str, Any]) -> set[str]:
    return {c.action for c in CONTROLS if control_applies(c, dep)}


def test_weight_plan_uses_the_rollout_steps_or_the_planner_defaults() -> None:
    assert weight_plan("canary") == [5, 25, 50, 100]
    assert weight_plan("canary", [10, {"weight": 40}, 0, 100, "x"]) == [10, 40, 100]
    assert weight_plan("blue-green") == [100] and weight_plan("rolling") == [100]


@pytest.mark.parametrize(
    ("weights", "status", "expected"),
    [
        ({"stable": 75, "canary": 25}, "running", ["done", "current", "next", "next"]),
        ({"stable": 100, "canary": 0}, "running", ["next"] * 4),
        (None, "pending", ["next"] * 4),
        ({"stable": 60, "canary": 40}, "running", ["done", "done", "next", "next"]),
        ({"stable": 75, "canary": 25}, "success", ["done"] * 4),
    ],
)
def test_step_marks(weights: dict[str, int] | None, status: str, expected: list[str]) -> None:
    marks = step_marks({"strategy": "canary", "status": status, "weights": weights})
    assert [m.state for m in marks] == expected


def test_controls_follow_the_planners_manual_transitions() -> None:
    for phase in MANUAL_TRANSITIONS["pause"]:
        assert "pause" in _controls({"status": "running", "phase": phase})
    assert _controls({"status": "running", "phase": "paused"}) == {"resume", "abort"}
    assert _controls({"status": "running", "phase": "rolling_back"}) == set()
    assert _controls({"status": "rolled_back", "phase": "done"}) == {"retry"}
    assert _controls({"status": "success", "phase": "done"}) == set()
    waiting = {"status": "pending", "phase": None, "approval": {"status": "requested"}}
    assert _controls(waiting) == {"approve", "reject", "abort"}
    assert "approve" not in _controls(waiting | {"approval": {"status": "approved"}})


def test_verdicts_newest_first_with_wall_clock_or_relative_times() -> None:
    rows = verdict_rows(
        [
            {"at": 1_900_000_000.0, "outcome": "inconclusive", "sentence": "holding"},
            "junk",
            {"at": 12.0, "outcome": "fail", "reason_code": "errors", "sentence": "rolling back"},
            {"outcome": "pass"},
        ]
    )
    assert [(r.sentence, r.tone) for r in rows] == [("rolling back", "bad"), ("holding", "warn")]
    assert rows[0].when is None and rows[0].at == 12.0 and rows[1].when is not None


def test_signals_in_both_shapes_with_error_ratio_and_roles() -> None:
    flat = signal_rows({"signals": {"canary": {"requests": 200, "errors": 3}, "stable": {"requests": 0}}})
    assert [(r.version, r.role, r.error_ratio) for r in flat] == [("stable", "stable", None), ("canary", "new", 0.015)]
    nested = signal_rows(
        {
            "release": "bbb",
            "previous_release": "aaa",
            "signals": {
                "user": {
                    "bbb": {"requests": 10, "errors": 0, "rate": 1.5, "latency_p95": 0.2},
                    "aaa": {"requests": 30},
                },
                "order": {"aaa": {"requests": 5, "errors": True}},
            },
        }
    )
    assert [(r.service, r.version, r.role) for r in nested] == [
        ("order", "aaa", "stable"),
        ("user", "aaa", "stable"),
        ("user", "bbb", "new"),
    ]
    assert nested[0].errors is None  # a boolean is not a count
    assert signal_rows({"signals": None}) == [] and signal_rows({}) == []
