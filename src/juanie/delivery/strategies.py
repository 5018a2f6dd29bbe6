"""The planners: given a rollout's state and what is observed now, the one next step (pure).

`plan_next_step` is level-triggered: it looks at the observation rather than trusting that the previous step
took effect (weights that drifted are set again, a rollback that did not land is repeated), so a controller
can call it after any crash. Every active phase consults the latest verdict, so a failing judge rolls back at
once at any step — even while paused — and a step only advances on a *pass* once its pause has elapsed.
"""

from __future__ import annotations

from dataclasses import replace

from juanie.delivery.plan import (
    ALL_STABLE,
    CANARY,
    STABLE,
    Done,
    InvalidRolloutConfig,
    Observation,
    Pause,
    Promote,
    RollBack,
    RollingUpdate,
    RolloutConfig,
    RolloutState,
    ScaleDownOld,
    SetWeights,
    StartCanary,
    StartPreview,
    Step,
    SwitchTraffic,
    Wait,
    record_verdict,
)


def plan_next_step(state: RolloutState, observed: Observation, now: float, config: RolloutConfig) -> Step:
    """Decide the next step of any strategy; the returned step carries the state to record after acting."""
    if state.strategy != config.strategy:
        raise InvalidRolloutConfig(
            f"rollout uses strategy {state.strategy!r} but the config is for {config.strategy!r}"
        )
    if state.phase == "done":
        return Done(state=state, outcome=state.outcome or "promoted")
    state = record_verdict(state, observed.verdict, now)
    if state.phase == "rolling_back":
        return _finish_rollback(state, observed, config)
    verdict = observed.verdict
    if verdict is not None and verdict.outcome == "fail" and _traffic_flows(state):
        return _roll_back(state, verdict.sentence, config)
    if state.phase == "paused":
        return Wait(state=state, wait=config.check_interval_seconds, reason="paused")
    if state.strategy == "canary":
        return _plan_canary(state, observed, now, config)
    if state.strategy == "blue_green":
        return _plan_blue_green(state, observed, now, config)
    return _plan_rolling(state, observed, now, config)


def _traffic_flows(state: RolloutState) -> bool:
    """Whether the new version is serving anyone, i.e. whether a failing verdict is about live traffic."""
    if state.strategy == "rolling":
        return state.phase != "starting" or state.new_started_at is not None
    return state.canary_weight > 0 or state.header_route


def _roll_back(state: RolloutState, reason: str, config: RolloutConfig) -> RollBack:
    new = replace(
        state, phase="rolling_back", outcome=state.outcome or "rolled_back", reason=reason, canary_weight=0,
        header_route=False,
    )  # fmt: skip
    return RollBack(state=new, reason=reason, weights=dict(ALL_STABLE), wait=config.check_interval_seconds)


def _finish_rollback(state: RolloutState, observed: Observation, config: RolloutConfig) -> Step:
    """Done once the engine shows no traffic and no ready replicas on the new version; otherwise repeat."""
    weights_ok = observed.weights is None or observed.weights.get(CANARY, 0) == 0
    if weights_ok and observed.new_ready == 0:
        done = replace(state, phase="done")
        return Done(state=done, outcome=state.outcome or "rolled_back")
    return RollBack(state=state, reason=state.reason, weights=dict(ALL_STABLE), wait=config.check_interval_seconds)


def _wait_until_ready(state: RolloutState, observed: Observation, now: float, config: RolloutConfig) -> Step | None:
    """Common start: issue the start once, then wait for readiness up to the timeout. None when ready."""
    if state.new_started_at is None:
        started = replace(state, new_started_at=now)
        start_cls = {"canary": StartCanary, "blue_green": StartPreview, "rolling": RollingUpdate}[state.strategy]
        return start_cls(state=started, wait=config.check_interval_seconds)
    if observed.new_ready >= max(1, observed.new_desired):
        return None
    waited = now - state.new_started_at
    if waited > config.ready_timeout_seconds:
        reason = (
            f"new version {state.revision} not ready after {waited:.0f} s "
            f"({observed.new_ready}/{observed.new_desired} replicas) — rolling back"
        )
        return _roll_back(state, reason, config)
    return Wait(state=state, wait=config.check_interval_seconds, reason="waiting for the new version to be ready")


def _hold(state: RolloutState, now: float, config: RolloutConfig, what: str) -> Step:
    """Inconclusive at a step's end: keep collecting, up to `max_extension_seconds`, then pause or roll back."""
    if state.hold_started_at is None:
        state = replace(state, phase="analysing", hold_started_at=now)
    held = now - (state.hold_started_at or now)
    if held <= config.max_extension_seconds:
        return Wait(state=state, wait=config.check_interval_seconds, reason=f"holding: {what}")
    reason = f"analysis still inconclusive {held:.0f} s after the step ended: {what}"
    if config.on_inconclusive == "rollback":
        return _roll_back(state, reason + " — rolling back", config)
    paused = replace(state, phase="paused", paused_at=now, resume_phase="analysing")
    return Pause(state=paused, reason=reason + " — paused for a person to decide", wait=config.check_interval_seconds)


def _verdict_text(observed: Observation) -> str:
    return observed.verdict.sentence if observed.verdict is not None else "no verdict yet"


def _plan_canary(state: RolloutState, observed: Observation, now: float, config: RolloutConfig) -> Step:
    if state.phase == "starting":
        waiting = _wait_until_ready(state, observed, now, config)
        if waiting is not None:
            return waiting
        return _enter_step(state, 0, now, config)
    if state.phase == "promoting":
        if observed.stable_revision == state.revision:
            return Done(state=replace(state, phase="done", outcome="promoted"), outcome="promoted")
        return Promote(state=state, wait=config.check_interval_seconds)
    steps = config.canary_steps
    step = steps[state.step_index]
    if observed.weights is not None and observed.weights.get(CANARY, 0) != step.weight:
        return SetWeights(
            state=state, weights=state.weights, header_route=state.header_route, wait=config.check_interval_seconds
        )
    elapsed = now - (state.step_started_at if state.step_started_at is not None else now)
    if elapsed < step.pause_seconds:
        remaining = step.pause_seconds - elapsed
        return Wait(state=state, wait=min(config.check_interval_seconds, remaining), reason="step pause")
    if observed.verdict is None or observed.verdict.outcome != "pass":
        return _hold(state, now, config, _verdict_text(observed))
    if state.step_index + 1 < len(steps):
        return _enter_step(state, state.step_index + 1, now, config)
    promoted = replace(state, phase="promoting", canary_weight=100, header_route=False, hold_started_at=None)
    return Promote(state=promoted, wait=config.check_interval_seconds)


def _enter_step(state: RolloutState, index: int, now: float, config: RolloutConfig) -> SetWeights:
    step = config.canary_steps[index]
    new = replace(
        state, phase="progressing", step_index=index, canary_weight=step.weight, header_route=step.header_only,
        step_started_at=now, hold_started_at=None,
    )  # fmt: skip
    wait = min(config.check_interval_seconds, step.pause_seconds) if step.pause_seconds else 0.0
    return SetWeights(state=new, weights=new.weights, header_route=step.header_only, wait=wait)


def _plan_blue_green(state: RolloutState, observed: Observation, now: float, config: RolloutConfig) -> Step:
    if state.phase == "starting":
        waiting = _wait_until_ready(state, observed, now, config)
        if waiting is not None:
            return waiting
        new = replace(state, phase="analysing", header_route=True, step_started_at=now, hold_started_at=None)
        return SetWeights(state=new, weights=new.weights, header_route=True, wait=config.check_interval_seconds)
    if state.phase == "promoting":
        return _keep_warm(state, observed, now, config)
    elapsed = now - (state.step_started_at if state.step_started_at is not None else now)
    if elapsed < config.preview_analysis_seconds:
        remaining = config.preview_analysis_seconds - elapsed
        return Wait(state=state, wait=min(config.check_interval_seconds, remaining), reason="analysing preview")
    if observed.verdict is None or observed.verdict.outcome != "pass":
        return _hold(state, now, config, _verdict_text(observed))
    switched = replace(state, phase="promoting", canary_weight=100, header_route=False, switched_at=now)
    return SwitchTraffic(state=switched, wait=config.check_interval_seconds)


def _keep_warm(state: RolloutState, observed: Observation, now: float, config: RolloutConfig) -> Step:
    """After the switch the old version stays up for `keep_warm_seconds`, so switching back takes seconds."""
    if observed.weights is not None and observed.weights.get(CANARY, 0) != 100:
        return SwitchTraffic(state=state, weights={STABLE: 0, CANARY: 100}, wait=config.check_interval_seconds)
    switched_at = state.switched_at if state.switched_at is not None else now
    until = switched_at + config.keep_warm_seconds
    if now < until:
        return Wait(state=state, wait=min(config.check_interval_seconds, until - now), reason="old version kept warm")
    done = replace(state, phase="done", outcome="promoted")
    return ScaleDownOld(state=done, after=until, wait=0.0)


def _plan_rolling(state: RolloutState, observed: Observation, now: float, config: RolloutConfig) -> Step:
    """Rolling updates are the engine's job (maxSurge/maxUnavailable); the planner starts one and waits."""
    waiting = _wait_until_ready(state, observed, now, config)
    if waiting is not None:
        if isinstance(waiting, RollingUpdate):
            waiting = replace(waiting, state=replace(waiting.state, phase="progressing"))
        return waiting
    if not observed.rolled_out:
        if now - (state.new_started_at or now) > config.ready_timeout_seconds:
            return _roll_back(state, f"rolling update of {state.revision} did not finish in time", config)
        return Wait(state=state, wait=config.check_interval_seconds, reason="engine rolling replicas")
    return Done(state=replace(state, phase="done", outcome="promoted"), outcome="promoted")
