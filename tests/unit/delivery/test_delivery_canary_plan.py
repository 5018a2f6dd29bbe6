"""The canary planner, walked step by step with observations and real verdicts."""

from __future__ import annotations

import pytest

from juanie.delivery.judge import Verdict
from juanie.delivery.plan import (
    ALL_STABLE,
    CanaryStep,
    Done,
    Observation,
    Pause,
    Promote,
    RollBack,
    RolloutConfig,
    RolloutState,
    SetWeights,
    StartCanary,
    Wait,
    new_rollout,
)
from juanie.delivery.strategies import plan_next_step

CFG = RolloutConfig(steps=(CanaryStep(5, 30), CanaryStep(25, 60), CanaryStep(50, 120)), max_extension_seconds=100)


def seen(state: RolloutState, verdict: Verdict | None = None, **kw: object) -> Observation:
    """What the engine would report if the last step took effect."""
    return Observation(new_ready=1, weights=state.weights, verdict=verdict, **kw)  # type: ignore[arg-type]


def started(now: float = 0.0, cfg: RolloutConfig = CFG) -> RolloutState:
    s = new_rollout("canary", "r2", now)
    step = plan_next_step(s, Observation(), now, cfg)
    assert isinstance(step, StartCanary) and step.state.new_started_at == now
    step = plan_next_step(step.state, Observation(new_ready=1), now + 1, cfg)
    assert isinstance(step, SetWeights)
    return step.state


def test_start_waits_for_ready_replicas_then_sets_the_first_weight() -> None:
    s = new_rollout("canary", "r2", 0.0)
    step = plan_next_step(s, Observation(), 0.0, CFG)
    assert isinstance(step, StartCanary)
    step = plan_next_step(step.state, Observation(new_ready=0, new_desired=2), 5.0, CFG)
    assert isinstance(step, Wait) and "ready" in step.reason
    step = plan_next_step(step.state, Observation(new_ready=2, new_desired=2), 6.0, CFG)
    assert isinstance(step, SetWeights)
    assert step.weights == {"stable": 95, "canary": 5}
    assert step.state.phase == "progressing" and step.state.step_started_at == 6.0


def test_canary_not_ready_in_time_rolls_back() -> None:
    s = plan_next_step(new_rollout("canary", "r2", 0.0), Observation(), 0.0, CFG).state
    step = plan_next_step(s, Observation(new_ready=0), CFG.ready_timeout_seconds + 1, CFG)
    assert isinstance(step, RollBack) and "not ready" in step.reason


def test_full_walk_to_promotion(passing: Verdict, holding: Verdict) -> None:
    s = started(0.0)  # 5% from t=1
    step = plan_next_step(s, seen(s, passing), 10.0, CFG)
    assert isinstance(step, Wait) and step.wait <= CFG.check_interval_seconds  # pause not over: no advance
    step = plan_next_step(s, seen(s, passing), 31.0, CFG)
    assert isinstance(step, SetWeights) and step.weights == {"stable": 75, "canary": 25}
    s = step.state
    step = plan_next_step(s, seen(s, holding), 91.0, CFG)  # step over, but inconclusive: hold
    assert isinstance(step, Wait) and step.state.phase == "analysing" and "holding" in step.reason
    s = step.state
    step = plan_next_step(s, seen(s, passing), 95.0, CFG)
    assert isinstance(step, SetWeights) and step.weights == {"stable": 50, "canary": 50}
    s = step.state
    assert s.hold_started_at is None and s.step_index == 2
    step = plan_next_step(s, seen(s, passing), 215.0, CFG)
    assert isinstance(step, Promote) and step.state.phase == "promoting"
    assert step.state.weights == {"stable": 0, "canary": 100}
    s = step.state
    again = plan_next_step(s, seen(s, stable_revision="r1"), 216.0, CFG)
    assert isinstance(again, Promote)  # not observed yet: apply again (idempotent)
    done = plan_next_step(s, seen(s, stable_revision="r2"), 217.0, CFG)
    assert isinstance(done, Done) and done.outcome == "promoted" and done.state.is_final
    assert isinstance(plan_next_step(done.state, Observation(), 300.0, CFG), Done)
    # Verdict history keeps each change, with its sentence.
    assert [r.outcome for r in done.state.verdicts] == ["pass", "inconclusive", "pass"]


@pytest.mark.parametrize("at", [5.0, 40.0, 150.0])
def test_failing_verdict_rolls_back_at_once_at_any_step(at: float, passing: Verdict, failing: Verdict) -> None:
    s = started(0.0)
    t = 1.0
    while True:  # advance on passes until the step containing `at`
        step = plan_next_step(s, seen(s, passing), t, CFG)
        if isinstance(step, SetWeights) and t <= at:
            s = step.state
        if t >= at:
            break
        t += 1.0
    step = plan_next_step(s, seen(s, failing), at, CFG)
    assert isinstance(step, RollBack)
    assert step.weights == ALL_STABLE
    assert step.reason == failing.sentence
    assert step.state.phase == "rolling_back" and step.state.outcome == "rolled_back"


def test_rollback_repeats_until_observed_then_is_done(failing: Verdict) -> None:
    s = started(0.0)
    rb = plan_next_step(s, seen(s, failing), 3.0, CFG)
    s = rb.state
    still = plan_next_step(s, Observation(new_ready=1, weights={"stable": 95, "canary": 5}), 4.0, CFG)
    assert isinstance(still, RollBack) and still.weights == ALL_STABLE
    stopping = plan_next_step(s, Observation(new_ready=1, weights=dict(ALL_STABLE)), 5.0, CFG)
    assert isinstance(stopping, RollBack)  # traffic is back, replicas not yet stopped
    done = plan_next_step(s, Observation(new_ready=0, weights=dict(ALL_STABLE)), 6.0, CFG)
    assert isinstance(done, Done) and done.outcome == "rolled_back"


def test_drifted_weights_are_set_again(passing: Verdict) -> None:
    s = started(0.0)
    step = plan_next_step(s, Observation(new_ready=1, weights=dict(ALL_STABLE), verdict=passing), 2.0, CFG)
    assert isinstance(step, SetWeights) and step.weights == {"stable": 95, "canary": 5}
    # Nothing advanced: the same step, same clock; only the verdict history grew.
    assert (step.state.step_index, step.state.step_started_at, step.state.phase) == (0, 1.0, "progressing")


def test_inconclusive_past_the_extension_pauses_for_a_person(holding: Verdict) -> None:
    s = started(0.0)
    s = plan_next_step(s, seen(s, holding), 31.0, CFG).state
    step = plan_next_step(s, seen(s, holding), 31.0 + CFG.max_extension_seconds + 1, CFG)
    assert isinstance(step, Pause) and "inconclusive" in step.reason
    assert step.state.paused and step.state.resume_phase == "analysing"
    assert isinstance(plan_next_step(step.state, seen(step.state, holding), 500.0, CFG), Wait)


def test_inconclusive_past_the_extension_can_roll_back_instead(holding: Verdict) -> None:
    cfg = RolloutConfig(steps=CFG.steps, max_extension_seconds=10, on_inconclusive="rollback")
    s = started(0.0, cfg)
    s = plan_next_step(s, seen(s, holding), 31.0, cfg).state
    step = plan_next_step(s, seen(s, holding), 42.0, cfg)
    assert isinstance(step, RollBack) and "inconclusive" in step.reason


def test_no_verdict_yet_never_advances() -> None:
    s = started(0.0)
    step = plan_next_step(s, seen(s, None), 100.0, CFG)
    assert isinstance(step, Wait) and "no verdict yet" in step.reason


def test_a_failing_verdict_before_any_traffic_is_ignored(failing: Verdict) -> None:
    s = plan_next_step(new_rollout("canary", "r2", 0.0), Observation(), 0.0, CFG).state
    step = plan_next_step(s, Observation(new_ready=0, verdict=failing), 1.0, CFG)
    assert isinstance(step, Wait)


def test_header_routed_testers_come_first_and_are_judged(passing: Verdict, failing: Verdict) -> None:
    cfg = RolloutConfig(steps=CFG.steps, header_test_seconds=20)
    s = new_rollout("canary", "r2", 0.0)
    s = plan_next_step(s, Observation(), 0.0, cfg).state
    step = plan_next_step(s, Observation(new_ready=1), 1.0, cfg)
    assert isinstance(step, SetWeights) and step.header_route and step.weights == ALL_STABLE
    s = step.state
    assert isinstance(plan_next_step(s, seen(s, failing), 5.0, cfg), RollBack)
    step = plan_next_step(s, seen(s, passing), 21.0, cfg)
    assert isinstance(step, SetWeights) and not step.header_route and step.weights["canary"] == 5


def test_config_for_another_strategy_is_an_error() -> None:
    with pytest.raises(ValueError, match="strategy 'canary' but the config is for 'rolling'"):
        plan_next_step(new_rollout("canary", "r2", 0.0), Observation(), 0.0, RolloutConfig(strategy="rolling"))
