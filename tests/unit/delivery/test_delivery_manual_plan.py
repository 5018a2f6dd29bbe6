"""Manual pause, resume, abort and retry: every phase against the transition table, and their effects."""

from __future__ import annotations

from dataclasses import replace

import pytest

from juanie.delivery.judge import Verdict
from juanie.delivery.plan import (
    ALL_STABLE,
    MANUAL_TRANSITIONS,
    CanaryStep,
    Done,
    IllegalTransition,
    InvalidRolloutConfig,
    Observation,
    RollBack,
    RolloutConfig,
    RolloutState,
    SetWeights,
    Wait,
    abort,
    new_rollout,
    pause,
    resume,
    retry,
)
from juanie.delivery.strategies import plan_next_step

CFG = RolloutConfig(steps=(CanaryStep(10, 60), CanaryStep(50, 60)))
PHASES = ("starting", "progressing", "analysing", "paused", "promoting", "rolling_back", "done")
ACTIONS = {
    "pause": lambda s: pause(s, 10.0),
    "resume": lambda s: resume(s, 10.0),
    "abort": lambda s: abort(s, 10.0),
    "retry": lambda s: retry(s, 10.0),
}


def at_step(weight: int = 10) -> RolloutState:
    s = new_rollout("canary", "r2", 0.0)
    s = plan_next_step(s, Observation(), 0.0, CFG).state
    step = plan_next_step(s, Observation(new_ready=1), 1.0, CFG)
    assert isinstance(step, SetWeights) and step.weights["canary"] == weight
    return step.state


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("phase", PHASES)
def test_every_manual_action_in_every_phase_follows_the_table(action: str, phase: str) -> None:
    s = replace(at_step(), phase=phase, outcome="rolled_back" if phase == "done" else None)  # type: ignore[arg-type]
    if phase in MANUAL_TRANSITIONS[action]:
        ACTIONS[action](s)
    else:
        with pytest.raises(IllegalTransition) as err:
            ACTIONS[action](s)
        message = str(err.value)
        assert f"cannot {action} rollout of r2: it is {phase}" in message
        assert "allowed only when" in message


def test_abort_yields_all_stable_weights_in_one_step() -> None:
    s = abort(at_step(), 20.0, "aborted by alice: wrong build")
    step = plan_next_step(s, Observation(new_ready=1, weights={"stable": 90, "canary": 10}), 20.0, CFG)
    assert isinstance(step, RollBack)
    assert step.weights == ALL_STABLE
    assert step.wait <= CFG.check_interval_seconds
    assert step.reason == "aborted by alice: wrong build"
    done = plan_next_step(step.state, Observation(new_ready=0, weights=dict(ALL_STABLE)), 21.0, CFG)
    assert isinstance(done, Done) and done.outcome == "aborted"


def test_pause_holds_weights_even_after_the_step_ends(passing: Verdict) -> None:
    s = pause(at_step(), 30.0)
    assert s.paused
    step = plan_next_step(s, Observation(new_ready=1, weights=s.weights, verdict=passing), 500.0, CFG)
    assert isinstance(step, Wait) and step.reason == "paused"


def test_a_paused_rollout_still_rolls_back_on_a_failing_verdict(failing: Verdict) -> None:
    s = pause(at_step(), 30.0)
    step = plan_next_step(s, Observation(new_ready=1, weights=s.weights, verdict=failing), 31.0, CFG)
    assert isinstance(step, RollBack) and step.weights == ALL_STABLE


def test_resume_does_not_count_paused_time_toward_the_step(passing: Verdict) -> None:
    s = at_step()  # step of 60 s started at t=1
    s = pause(s, 31.0)  # 30 s served
    s = resume(s, 1031.0)  # paused for 1000 s
    assert s.phase == "progressing" and s.step_started_at == 1001.0
    obs = Observation(new_ready=1, weights=s.weights, verdict=passing)
    assert isinstance(plan_next_step(s, obs, 1060.0, CFG), Wait)  # 59 s served
    step = plan_next_step(s, obs, 1062.0, CFG)
    assert isinstance(step, SetWeights) and step.weights["canary"] == 50


def test_resume_after_an_inconclusive_pause_gives_a_fresh_extension(holding: Verdict) -> None:
    cfg = RolloutConfig(steps=CFG.steps, max_extension_seconds=30)
    s = at_step()
    obs = Observation(new_ready=1, weights=s.weights, verdict=holding)
    s = plan_next_step(s, obs, 61.0, cfg).state
    paused = plan_next_step(s, obs, 92.0, cfg).state
    assert paused.paused
    s = resume(paused, 200.0)
    assert s.phase == "analysing" and s.hold_started_at == 200.0
    assert isinstance(plan_next_step(s, obs, 220.0, cfg), Wait)


def test_retry_starts_the_same_revision_as_a_new_attempt(failing: Verdict) -> None:
    s = at_step()
    s = plan_next_step(s, Observation(new_ready=1, weights=s.weights, verdict=failing), 5.0, CFG).state
    s = plan_next_step(s, Observation(new_ready=0, weights=dict(ALL_STABLE)), 6.0, CFG).state
    assert s.phase == "done" and s.outcome == "rolled_back"
    again = retry(s, 100.0)
    assert (again.revision, again.attempt, again.phase, again.started_at) == ("r2", 2, "starting", 100.0)
    assert again.verdicts == () and again.canary_weight == 0


def test_retry_of_a_promoted_rollout_is_refused() -> None:
    s = replace(at_step(), phase="done", outcome="promoted")
    with pytest.raises(IllegalTransition, match="it was promoted, nothing to retry"):
        retry(s, 10.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": (CanaryStep(50, 10), CanaryStep(25, 10))}, "steps[1].weight: expected an integer between 51"),
        ({"steps": (CanaryStep(100, 10),)}, "100 is the promotion"),
        ({"steps": (CanaryStep(5, -1),)}, "steps[0].pause_seconds: expected >= 0"),
        ({"steps": ()}, "at least one step"),
        ({"strategy": "big_bang"}, "strategy must be one of rolling, blue_green, canary"),
        ({"check_interval_seconds": 0}, "check_interval_seconds: expected > 0"),
        ({"keep_warm_seconds": -5}, "keep_warm_seconds: expected >= 0"),
        ({"on_inconclusive": "ignore"}, "on_inconclusive: expected 'pause' or 'rollback'"),
    ],
)
def test_bad_rollout_config_says_what_to_fix(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidRolloutConfig) as err:
        RolloutConfig(**kwargs)
    assert message in str(err.value)


def test_new_rollout_validates_its_inputs() -> None:
    with pytest.raises(InvalidRolloutConfig, match="non-empty"):
        new_rollout("canary", "", 0.0)
    with pytest.raises(InvalidRolloutConfig, match="strategy must be one of"):
        new_rollout("shadow", "r2", 0.0)  # type: ignore[arg-type]
