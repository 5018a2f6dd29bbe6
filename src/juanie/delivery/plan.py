"""The vocabulary of a rollout: its state, what the engine observed, the steps a planner may take, and the
manual transitions (pause, resume, abort, retry).

All values are immutable and every function is pure: time is passed in as `now` (seconds, any epoch), so a
controller can persist a `RolloutState`, be killed at any line, and plan again from what it observes.
The phase table below is the documentation of which manual action is legal when; the planners in
`juanie.delivery.strategies` move the phases forward.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from juanie.delivery.judge import Outcome, Verdict

Strategy = Literal["rolling", "blue_green", "canary"]
Phase = Literal["starting", "progressing", "analysing", "paused", "promoting", "rolling_back", "done"]
FinalOutcome = Literal["promoted", "rolled_back", "aborted"]

STRATEGIES: tuple[Strategy, ...] = ("rolling", "blue_green", "canary")

MANUAL_TRANSITIONS: dict[str, frozenset[str]] = {
    "pause": frozenset({"starting", "progressing", "analysing"}),
    "resume": frozenset({"paused"}),
    "abort": frozenset({"starting", "progressing", "analysing", "paused", "promoting"}),
    "retry": frozenset({"done"}),
}
"""Which phases each manual action may start from; everything else raises `IllegalTransition`."""

STABLE, CANARY = "stable", "canary"
ALL_STABLE: dict[str, int] = {STABLE: 100, CANARY: 0}


class IllegalTransition(ValueError):
    """A manual action that makes no sense in the rollout's current phase; the message says what would."""


class InvalidRolloutConfig(ValueError):
    """Rollout settings that cannot work (e.g. weights that do not increase); the message says what to fix."""


@dataclass(frozen=True)
class CanaryStep:
    """Send `weight` percent of traffic to the canary and watch for at least `pause_seconds`."""

    weight: int
    pause_seconds: float
    header_only: bool = False  # testers routed by header; the public weight stays 0


DEFAULT_STEPS: tuple[CanaryStep, ...] = (
    CanaryStep(5, 30.0),
    CanaryStep(25, 60.0),
    CanaryStep(50, 420.0),
)
"""5 → 25 → 50 → 100. The short early steps stop plainly bad releases while few users see them; most of the
time is spent at 50%, where a comparison of canary and stable learns the most per request (both arms the same
size), so that a doubling of a 0.5% error rate at 50 rps is caught before promotion."""


@dataclass(frozen=True)
class RolloutConfig:
    """How a strategy proceeds. Canary `steps` end at 100% implicitly (the promotion)."""

    strategy: Strategy = "canary"
    steps: tuple[CanaryStep, ...] = DEFAULT_STEPS
    header_test_seconds: float = 0.0
    check_interval_seconds: float = 1.0
    max_extension_seconds: float = 300.0
    on_inconclusive: Literal["pause", "rollback"] = "pause"
    ready_timeout_seconds: float = 300.0
    preview_analysis_seconds: float = 60.0
    keep_warm_seconds: float = 600.0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InvalidRolloutConfig(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.strategy == "canary" and not self.steps:
            raise InvalidRolloutConfig("a canary needs at least one step, e.g. weights 5, 25, 50")
        previous = 0
        for i, step in enumerate(self.steps):
            if not previous < step.weight < 100:
                raise InvalidRolloutConfig(
                    f"steps[{i}].weight: expected an integer between {previous + 1} and 99 "
                    f"(weights must increase and 100 is the promotion), got {step.weight}"
                )
            if step.pause_seconds < 0:
                raise InvalidRolloutConfig(f"steps[{i}].pause_seconds: expected >= 0, got {step.pause_seconds}")
            previous = step.weight
        for name in ("check_interval_seconds", "ready_timeout_seconds"):
            if getattr(self, name) <= 0:
                raise InvalidRolloutConfig(f"{name}: expected > 0, got {getattr(self, name)}")
        for name in ("header_test_seconds", "max_extension_seconds", "preview_analysis_seconds", "keep_warm_seconds"):
            if getattr(self, name) < 0:
                raise InvalidRolloutConfig(f"{name}: expected >= 0, got {getattr(self, name)}")
        if self.on_inconclusive not in ("pause", "rollback"):
            raise InvalidRolloutConfig(f"on_inconclusive: expected 'pause' or 'rollback', got {self.on_inconclusive!r}")

    @property
    def canary_steps(self) -> tuple[CanaryStep, ...]:
        """The steps actually walked: header-routed testers first when configured, then the weights."""
        testers = (CanaryStep(0, self.header_test_seconds, header_only=True),) if self.header_test_seconds else ()
        return testers + self.steps


@dataclass(frozen=True)
class VerdictRecord:
    """A verdict as kept in the rollout's history: when, what, and the sentence people read."""

    at: float
    outcome: Outcome
    reason_code: str
    sentence: str


@dataclass(frozen=True)
class RolloutState:
    """Everything a planner needs to continue a rollout, and nothing it could instead observe."""

    strategy: Strategy
    revision: str
    started_at: float
    phase: Phase = "starting"
    step_index: int = 0
    canary_weight: int = 0
    header_route: bool = False
    new_started_at: float | None = None
    step_started_at: float | None = None
    hold_started_at: float | None = None
    paused_at: float | None = None
    resume_phase: Phase | None = None
    switched_at: float | None = None
    outcome: FinalOutcome | None = None
    reason: str = ""
    verdicts: tuple[VerdictRecord, ...] = ()
    attempt: int = 1

    @property
    def weights(self) -> dict[str, int]:
        """Desired route weights, as the engine's `set_weights` takes them."""
        return {STABLE: 100 - self.canary_weight, CANARY: self.canary_weight}

    @property
    def paused(self) -> bool:
        return self.phase == "paused"

    @property
    def is_final(self) -> bool:
        return self.phase == "done"


def new_rollout(strategy: Strategy, revision: str, now: float, attempt: int = 1) -> RolloutState:
    """A rollout about to start: nothing deployed yet, all traffic on stable."""
    if strategy not in STRATEGIES:
        raise InvalidRolloutConfig(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if not revision:
        raise InvalidRolloutConfig("revision must be a non-empty release identifier")
    return RolloutState(strategy=strategy, revision=revision, started_at=now, attempt=attempt)


@dataclass(frozen=True)
class Observation:
    """What the engine and the judge report right now.

    `new_ready`/`new_desired` count replicas of the new revision (canary, preview or rolled pods); `weights`
    are the route's current weights (None when the engine has no route, e.g. a plain rolling update);
    `stable_revision` is the revision the engine now calls stable; `rolled_out` is the engine's own
    "update complete" for rolling updates.
    """

    new_ready: int = 0
    new_desired: int = 1
    weights: dict[str, int] | None = None
    verdict: Verdict | None = None
    stable_revision: str = ""
    rolled_out: bool = False


@dataclass(frozen=True, kw_only=True)
class Step:
    """One action for the controller: apply it, record `state`, and plan again after `wait` seconds."""

    state: RolloutState
    wait: float = 0.0


@dataclass(frozen=True, kw_only=True)
class StartCanary(Step):
    """Bring the canary's replicas up beside stable, with no public traffic yet."""


@dataclass(frozen=True, kw_only=True)
class StartPreview(Step):
    """Blue-green: bring the new version up as *preview*, reachable only by header-routed test traffic."""


@dataclass(frozen=True, kw_only=True)
class RollingUpdate(Step):
    """Rolling: apply the new revision and let the engine replace replicas (maxSurge/maxUnavailable)."""


@dataclass(frozen=True, kw_only=True)
class SetWeights(Step):
    weights: dict[str, int]
    header_route: bool = False


@dataclass(frozen=True, kw_only=True)
class Wait(Step):
    """Nothing to do yet; `reason` says what the rollout is waiting for."""

    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class Promote(Step):
    """Canary passed every step: send it all traffic and make it the stable version."""


@dataclass(frozen=True, kw_only=True)
class SwitchTraffic(Step):
    """Blue-green: send all traffic to the new version at once; the old one stays warm."""

    weights: dict[str, int] = field(default_factory=lambda: {STABLE: 0, CANARY: 100})


@dataclass(frozen=True, kw_only=True)
class ScaleDownOld(Step):
    """Blue-green: the keep-warm window ended at `after` (same clock as `now`); stop the old version."""

    after: float


@dataclass(frozen=True, kw_only=True)
class RollBack(Step):
    """All traffic to stable in one move, stop the new version, revert the GitOps commit with `reason`."""

    reason: str
    weights: dict[str, int] = field(default_factory=lambda: dict(ALL_STABLE))


@dataclass(frozen=True, kw_only=True)
class Pause(Step):
    """The planner stopped itself and waits for a person (`resume` or `abort`); `reason` says why."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class Done(Step):
    outcome: FinalOutcome


def _check(action: str, state: RolloutState) -> None:
    allowed = MANUAL_TRANSITIONS[action]
    if state.phase not in allowed:
        raise IllegalTransition(
            f"cannot {action} rollout of {state.revision}: it is {state.phase}; "
            f"{action} is allowed only when {' or '.join(sorted(allowed))}"
        )


def pause(state: RolloutState, now: float) -> RolloutState:
    """Hold the rollout at its current weights. The judge keeps watching: a failing verdict still rolls back."""
    _check("pause", state)
    return replace(state, phase="paused", paused_at=now, resume_phase=state.phase)


def resume(state: RolloutState, now: float) -> RolloutState:
    """Continue where the rollout was paused; the paused time does not count toward the step's pause, and an
    inconclusive hold gets a fresh extension window."""
    _check("resume", state)
    paused_for = now - (state.paused_at if state.paused_at is not None else now)
    return replace(
        state,
        phase=state.resume_phase or "progressing",
        paused_at=None,
        resume_phase=None,
        step_started_at=None if state.step_started_at is None else state.step_started_at + paused_for,
        new_started_at=None if state.new_started_at is None else state.new_started_at + paused_for,
        hold_started_at=None if state.hold_started_at is None else now,
    )


def abort(state: RolloutState, now: float, reason: str = "aborted by user") -> RolloutState:
    """Stop now: the next plan sends all traffic to stable in one step (blue-green: switch back to warm old)."""
    _check("abort", state)
    del now
    return replace(state, phase="rolling_back", outcome="aborted", reason=reason, canary_weight=0, header_route=False)


def retry(state: RolloutState, now: float) -> RolloutState:
    """Start the same revision again after a rollback or abort, as a new attempt."""
    _check("retry", state)
    if state.outcome == "promoted":
        raise IllegalTransition(f"cannot retry rollout of {state.revision}: it was promoted, nothing to retry")
    return new_rollout(state.strategy, state.revision, now, attempt=state.attempt + 1)


def record_verdict(state: RolloutState, verdict: Verdict | None, now: float) -> RolloutState:
    """Append the verdict to the history when it says something new (outcome or reason changed)."""
    if verdict is None:
        return state
    last = state.verdicts[-1] if state.verdicts else None
    if last is not None and (last.outcome, last.reason_code) == (verdict.outcome, verdict.reason_code):
        return state
    rec = VerdictRecord(now, verdict.outcome, verdict.reason_code, verdict.sentence)
    return replace(state, verdicts=(*state.verdicts, rec))
