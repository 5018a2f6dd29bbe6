"""Blue-green and rolling planners."""

from __future__ import annotations

from juanie.delivery.judge import Verdict
from juanie.delivery.plan import (
    ALL_STABLE,
    Done,
    Observation,
    RollBack,
    RollingUpdate,
    RolloutConfig,
    RolloutState,
    ScaleDownOld,
    SetWeights,
    StartPreview,
    SwitchTraffic,
    Wait,
    abort,
    new_rollout,
)
from juanie.delivery.strategies import plan_next_step

BG = RolloutConfig(strategy="blue_green", preview_analysis_seconds=30, keep_warm_seconds=300)
ROLL = RolloutConfig(strategy="rolling", ready_timeout_seconds=120)


def preview_under_analysis() -> RolloutState:
    s = new_rollout("blue_green", "r2", 0.0)
    step = plan_next_step(s, Observation(), 0.0, BG)
    assert isinstance(step, StartPreview)
    assert isinstance(plan_next_step(step.state, Observation(new_ready=0), 2.0, BG), Wait)
    step = plan_next_step(step.state, Observation(new_ready=1), 3.0, BG)
    assert isinstance(step, SetWeights)
    assert step.header_route and step.weights == ALL_STABLE  # only testers reach the preview
    assert step.state.phase == "analysing"
    return step.state


def test_blue_green_switches_all_at_once_after_a_passing_preview(passing: Verdict) -> None:
    s = preview_under_analysis()
    obs = Observation(new_ready=1, weights=s.weights, verdict=passing)
    assert isinstance(plan_next_step(s, obs, 20.0, BG), Wait)  # analysis window not over
    step = plan_next_step(s, obs, 33.0, BG)
    assert isinstance(step, SwitchTraffic)
    assert step.weights == {"stable": 0, "canary": 100}
    assert step.state.phase == "promoting" and step.state.switched_at == 33.0


def test_blue_green_keeps_old_warm_then_scales_it_down(passing: Verdict) -> None:
    s = preview_under_analysis()
    s = plan_next_step(s, Observation(new_ready=1, weights=s.weights, verdict=passing), 33.0, BG).state
    live = Observation(new_ready=1, weights={"stable": 0, "canary": 100}, verdict=passing)
    warm = plan_next_step(s, live, 200.0, BG)
    assert isinstance(warm, Wait) and "warm" in warm.reason
    drifted = plan_next_step(s, Observation(new_ready=1, weights=dict(ALL_STABLE)), 201.0, BG)
    assert isinstance(drifted, SwitchTraffic)
    down = plan_next_step(s, live, 333.0, BG)
    assert isinstance(down, ScaleDownOld) and down.after == 333.0
    assert down.state.phase == "done" and down.state.outcome == "promoted"
    assert isinstance(plan_next_step(down.state, live, 334.0, BG), Done)


def test_blue_green_switch_back_while_warm_is_one_step(passing: Verdict) -> None:
    s = preview_under_analysis()
    s = plan_next_step(s, Observation(new_ready=1, weights=s.weights, verdict=passing), 33.0, BG).state
    back = plan_next_step(abort(s, 60.0, "switch back"), Observation(new_ready=1), 60.0, BG)
    assert isinstance(back, RollBack) and back.weights == ALL_STABLE and back.reason == "switch back"


def test_blue_green_failing_preview_or_live_rolls_back(failing: Verdict, passing: Verdict) -> None:
    s = preview_under_analysis()
    step = plan_next_step(s, Observation(new_ready=1, weights=s.weights, verdict=failing), 10.0, BG)
    assert isinstance(step, RollBack)
    s = plan_next_step(s, Observation(new_ready=1, weights=s.weights, verdict=passing), 33.0, BG).state
    step = plan_next_step(s, Observation(new_ready=1, weights={"stable": 0, "canary": 100}, verdict=failing), 40, BG)
    assert isinstance(step, RollBack) and step.weights == ALL_STABLE


def test_blue_green_holds_an_inconclusive_preview(holding: Verdict) -> None:
    s = preview_under_analysis()
    step = plan_next_step(s, Observation(new_ready=1, weights=s.weights, verdict=holding), 40.0, BG)
    assert isinstance(step, Wait) and step.state.hold_started_at == 40.0


def test_rolling_delegates_to_the_engine_and_waits_for_it() -> None:
    s = new_rollout("rolling", "r2", 0.0)
    step = plan_next_step(s, Observation(), 0.0, ROLL)
    assert isinstance(step, RollingUpdate) and step.state.phase == "progressing"
    s = step.state
    assert isinstance(plan_next_step(s, Observation(new_ready=1, new_desired=3), 10.0, ROLL), Wait)
    waiting = plan_next_step(s, Observation(new_ready=3, new_desired=3, rolled_out=False), 11.0, ROLL)
    assert isinstance(waiting, Wait)
    done = plan_next_step(s, Observation(new_ready=3, new_desired=3, rolled_out=True), 12.0, ROLL)
    assert isinstance(done, Done) and done.outcome == "promoted"


def test_rolling_that_never_gets_ready_rolls_back() -> None:
    s = plan_next_step(new_rollout("rolling", "r2", 0.0), Observation(), 0.0, ROLL).state
    step = plan_next_step(s, Observation(new_ready=1, new_desired=3), 121.0, ROLL)
    assert isinstance(step, RollBack) and "not ready after 121 s (1/3 replicas)" in step.reason
    done = plan_next_step(step.state, Observation(new_ready=0), 122.0, ROLL)
    assert isinstance(done, Done) and done.outcome == "rolled_back"


def test_rolling_rolls_back_on_a_failing_slo_verdict(failing: Verdict) -> None:
    s = plan_next_step(new_rollout("rolling", "r2", 0.0), Observation(), 0.0, ROLL).state
    step = plan_next_step(s, Observation(new_ready=1, new_desired=3, verdict=failing), 5.0, ROLL)
    assert isinstance(step, RollBack) and step.reason == failing.sentence
