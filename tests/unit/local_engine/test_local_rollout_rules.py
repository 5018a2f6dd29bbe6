"""The supervisor's pure rules: rolling-update steps, back-off, health, HPA arithmetic, probe thresholds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from juanie.engines.local.hpa import CpuSample, recommend, stabilize, utilization_percent
from juanie.engines.local.manifests import HpaSpec
from juanie.engines.local.probes import ProbeSpec, ProbeState
from juanie.engines.local.rollout import (
    HealthInput,
    InstanceView,
    aggregate_health,
    backoff_delay,
    plan_rollout,
    workload_health,
)


def _inst(name: str, h: str, ready: bool = True, running: bool = True) -> InstanceView:
    return InstanceView(name=name, template_hash=h, ready=ready, running=running)


def simulate(desired: int, surge: int, unavailable: int, start_old: int) -> list[tuple[int, int]]:
    """Run a rollout where each new instance is ready one step after it starts; return (ready, total)."""
    insts = [_inst(f"old{i}", "old") for i in range(start_old)]
    seen = []
    n = 0
    for _ in range(100):
        insts = [i if i.template_hash == "old" else _inst(i.name, "new") for i in insts]  # new ones turn ready
        plan = plan_rollout(desired, "new", surge, unavailable, insts)
        insts = [i for i in insts if i.name not in plan.stop]
        seen.append((sum(i.ready for i in insts), len(insts)))
        for _ in range(plan.start):
            insts.append(_inst(f"new{n}", "new", ready=False))
            n += 1
        seen.append((sum(i.ready for i in insts), len(insts)))
        if plan.empty and all(i.template_hash == "new" and i.ready for i in insts) and len(insts) == desired:
            return seen
    raise AssertionError(f"rollout did not converge: {insts}")


def test_rolling_update_with_surge_never_drops_below_desired() -> None:
    seen = simulate(3, 1, 0, 3)
    assert min(r for r, _ in seen) >= 3
    assert max(t for _, t in seen) <= 4


@settings(max_examples=60, deadline=None)
@given(
    desired=st.integers(1, 6),
    surge=st.integers(0, 3),
    unavailable=st.integers(0, 3),
    start_old=st.integers(0, 6),
)
def test_rollouts_converge_within_the_surge_and_unavailability_bounds(desired, surge, unavailable, start_old) -> None:  # type: ignore[no-untyped-def]
    if surge == 0 and unavailable == 0:
        unavailable = 1
    seen = simulate(desired, surge, unavailable, start_old)
    if start_old >= desired:
        assert min(r for r, _ in seen) >= desired - unavailable
    assert max(t for _, t in seen) <= max(desired + surge, start_old)


def test_a_new_template_that_never_gets_ready_stalls_without_removing_old() -> None:
    insts = [_inst("o1", "old"), _inst("o2", "old"), _inst("o3", "old"), _inst("n1", "new", ready=False)]
    plan = plan_rollout(3, "new", 1, 0, insts)
    assert plan.empty


def test_old_unready_instances_go_first_and_scale_down_prefers_unready() -> None:
    plan = plan_rollout(2, "new", 1, 0, [_inst("o1", "old", ready=False), _inst("o2", "old"), _inst("o3", "old")])
    assert plan.stop == ("o1",) and plan.start == 1
    plan = plan_rollout(1, "h", 1, 0, [_inst("a", "h"), _inst("b", "h", ready=False), _inst("c", "h")])
    assert set(plan.stop) == {"b", "a"} or set(plan.stop) == {"b", "c"}
    assert len(plan.stop) == 2 and "b" in plan.stop


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n, 1.0, 10.0) for n in range(0, 7)] == [0, 1, 2, 4, 8, 10, 10]


def test_health_names_the_reason() -> None:
    ok = [_inst("a", "h"), _inst("b", "h")]
    assert workload_health(HealthInput(2, "h", ok))[0] == "Healthy"
    assert workload_health(HealthInput(2, "h", []))[0] == "Missing"
    rolling = [*ok, _inst("c", "new", ready=False)]
    assert workload_health(HealthInput(2, "new", rolling, rollout_age=5))[0] == "Progressing"
    health, msg = workload_health(HealthInput(2, "new", rolling, rollout_age=700, last_error="readiness: 503"))
    assert health == "Degraded" and "rollout stalled" in msg and "503" in msg
    looping = [InstanceView("x", "h", False, False, restarts=4, crash_looping=True)]
    health, msg = workload_health(HealthInput(1, "h", looping, last_error="x exited with code 3"))
    assert health == "Degraded" and msg.startswith("CrashLoopBackOff") and "code 3" in msg
    health, msg = workload_health(HealthInput(2, "h", [*ok, _inst("c", "h")]))
    assert health == "Progressing" and "3 replicas running, 2 desired" in msg  # a rollout ends at desired, not above
    assert aggregate_health(["Healthy", "Progressing", "Degraded"]) == "Degraded"
    assert aggregate_health(["Healthy", "Healthy"]) == "Healthy"


def test_probe_thresholds_count_consecutive_results() -> None:
    spec = ProbeSpec(kind="tcp", success_threshold=2, failure_threshold=3)
    s = ProbeState().record(spec, True)
    assert not s.passing
    s = s.record(spec, True)
    assert s.passing
    s = s.record(spec, False, "refused").record(spec, False, "refused")
    assert s.passing and s.failures == 2
    s = s.record(spec, False, "refused")
    assert not s.passing and s.last_error == "refused"


def test_hpa_follows_the_kubernetes_formula_with_tolerance_and_bounds() -> None:
    h = HpaSpec("api", "api", 1, 5, 50, 300)
    assert utilization_percent([CpuSample(0.1), CpuSample(0.05)], 0.1) == 75.0
    assert utilization_percent([], 0.1) is None
    assert recommend(h, 2, 75.0) == 3
    assert recommend(h, 2, 52.0) == 2  # inside the 10% tolerance
    assert recommend(h, 2, 500.0) == 5
    assert recommend(h, 3, 5.0) == 1
    n, hist = stabilize([(0.0, 4)], 10.0, 1, 4, 300)
    assert n == 4  # scale-down waits for the window
    n, _ = stabilize(hist, 400.0, 1, 4, 300)
    assert n == 1
    n, _ = stabilize([], 0.0, 5, 2, 300)
    assert n == 5
