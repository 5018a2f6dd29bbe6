"""How a deployment reads on its page: the weight steps, which controls apply, the judge's verdicts. Pure.

The input is the deployment as the API returns it (`GET /api/deployments/{id}`), so the server's first render
and the browser's live updates read the same shape. The rules for the controls mirror the delivery planner's
manual transitions; the API enforces them, the page only avoids offering what would be refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from juanie.delivery.plan import DEFAULT_STEPS, MANUAL_TRANSITIONS
from juanie.web.format import tone

ACTIVE = ("pending", "running")
RETRYABLE = ("failed", "rolled_back", "cancelled")


@dataclass(frozen=True)
class Control:
    """A button on the deployment page and when it applies (statuses and, if given, rollout phases)."""

    action: str
    statuses: tuple[str, ...]
    phases: tuple[str, ...] = ()
    needs_approval: bool = False


CONTROLS: tuple[Control, ...] = (
    Control("approve", ACTIVE, needs_approval=True),
    Control("reject", ACTIVE, needs_approval=True),
    Control("pause", ("running",), tuple(sorted(MANUAL_TRANSITIONS["pause"]))),
    Control("resume", ("running", "pending"), tuple(sorted(MANUAL_TRANSITIONS["resume"]))),
    Control("abort", ACTIVE),
    Control("retry", RETRYABLE),
)


def control_applies(control: Control, dep: Mapping[str, Any]) -> bool:
    """Whether `control` makes sense for the deployment right now (the browser runs the same rule)."""
    status = str(dep.get("status") or "")
    if status not in control.statuses:
        return False
    if control.needs_approval:
        approval = dep.get("approval") or {}
        return isinstance(approval, Mapping) and approval.get("status") == "requested"
    if control.phases:
        return str(dep.get("phase") or "") in control.phases
    if control.action == "abort":
        return str(dep.get("phase") or "") in ("", *MANUAL_TRANSITIONS["abort"])
    return True


@dataclass(frozen=True)
class StepMark:
    weight: int
    state: str  # done | current | next


def weight_plan(strategy: str, steps: Sequence[Any] | None = None) -> list[int]:
    """The canary weights a rollout walks, ending at 100 (the promotion); one switch for the others.

    `steps` may come from the deployment (numbers or `{weight}` objects); otherwise the planner's defaults.
    """
    if strategy.replace("-", "_") != "canary":
        return [100]
    weights: list[int] = []
    for step in steps or [s.weight for s in DEFAULT_STEPS]:
        value = step.get("weight") if isinstance(step, Mapping) else step
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 100:
            weights.append(int(value))
    weights = sorted(set(weights)) or [s.weight for s in DEFAULT_STEPS]
    return [*weights, 100]


def canary_weight(dep: Mapping[str, Any]) -> int | None:
    """The canary's (new version's) current share of traffic, if the rollout reports weights."""
    weights = dep.get("weights")
    if not isinstance(weights, Mapping):
        return None
    value = weights.get("canary")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0, min(100, int(value)))
    return None


def step_marks(dep: Mapping[str, Any]) -> list[StepMark]:
    """The plan with each step marked done, current or next, from the current weights and status."""
    plan = weight_plan(str(dep.get("strategy") or ""), dep.get("steps"))
    status = str(dep.get("status") or "")
    weight = canary_weight(dep)
    if status == "success":
        return [StepMark(w, "done") for w in plan]
    marks: list[StepMark] = []
    for w in plan:
        if weight is None or weight == 0:
            state = "next"
        elif w < weight:
            state = "done"
        elif w == weight:
            state = "current"
        else:
            state = "next"
        marks.append(StepMark(w, state))
    return marks


@dataclass(frozen=True)
class VerdictRow:
    at: float | None
    when: datetime | None  # None when `at` is not wall-clock time
    outcome: str
    tone: str
    reason_code: str
    sentence: str


def verdict_rows(verdicts: Sequence[Any] | None, limit: int = 50) -> list[VerdictRow]:
    """The judge's verdicts, newest first; malformed entries are skipped rather than breaking the page."""
    rows: list[VerdictRow] = []
    for raw in verdicts or []:
        if not isinstance(raw, Mapping) or not raw.get("sentence"):
            continue
        at = raw.get("at")
        at_value = float(at) if isinstance(at, int | float) and not isinstance(at, bool) else None
        when = datetime.fromtimestamp(at_value, UTC) if at_value is not None and at_value > 1e9 else None
        outcome = str(raw.get("outcome") or "")
        rows.append(
            VerdictRow(at_value, when, outcome, tone(outcome), str(raw.get("reason_code") or ""), str(raw["sentence"]))
        )
    rows.reverse()
    return rows[:limit]


_SIGNAL_KEYS = ("requests", "errors", "rate", "latency_p95")


@dataclass(frozen=True)
class SignalRow:
    service: str  # "" when the signals are not split by service
    version: str
    role: str  # "stable", "new" or ""
    requests: float | None
    errors: float | None
    error_ratio: float | None
    rate: float | None
    latency_p95: float | None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def flatten_signals(signals: Any) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(service, version, values) from either `{version: values}` or `{service: {version: values}}`."""
    if not isinstance(signals, Mapping):
        return []
    found: list[tuple[str, str, Mapping[str, Any]]] = []
    for key, value in signals.items():
        if not isinstance(value, Mapping):
            continue
        if any(k in value for k in _SIGNAL_KEYS):
            found.append(("", str(key), value))
            continue
        for version, values in value.items():
            if isinstance(values, Mapping):
                found.append((str(key), str(version), values))
    return found


def version_role(dep: Mapping[str, Any], version: str) -> str:
    if version in ("canary", "new") or (version and version == dep.get("release")):
        return "new"
    if version == "stable" or (version and version == dep.get("previous_release")):
        return "stable"
    return ""


def signal_rows(dep: Mapping[str, Any]) -> list[SignalRow]:
    """Golden signals per service and version (stable before new), with the error ratio worked out."""
    rows = []
    for service, version, values in flatten_signals(dep.get("signals")):
        requests, errors = _number(values.get("requests")), _number(values.get("errors"))
        ratio = (errors or 0.0) / requests if requests else None
        rows.append(
            SignalRow(
                service,
                version,
                version_role(dep, version),
                requests,
                errors,
                ratio,
                _number(values.get("rate")),
                _number(values.get("latency_p95")),
            )
        )
    order = {"stable": 0, "new": 1, "": 2}
    rows.sort(key=lambda r: (r.service, order[r.role], r.version))
    return rows
