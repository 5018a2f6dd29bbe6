"""The judge's verdicts, sentences, guards and input errors."""

from __future__ import annotations

import json
import math
import re

import pytest

from juanie.delivery.judge import JudgeConfig, JudgeInputError, Sample, Verdict, judge

INF = math.inf


def hist(n: int, fast: float = 0.5, mid: float = 0.96, slow: float = 0.99) -> tuple[tuple[float, int], ...]:
    """A gateway-like histogram of n requests with the given cumulative fractions at 0.1/0.25/0.5 s."""
    return ((0.1, round(n * fast)), (0.25, round(n * mid)), (0.5, round(n * slow)), (INF, n))


def test_zero_baseline_canary_errors_fail() -> None:
    v = judge(Sample(50, 5), Sample(950, 0))
    assert v.outcome == "fail"
    assert v.reason_code == "error_rate_worse"
    assert v.p_value <= JudgeConfig().alpha / 2
    assert v.interval[0] > 1.0 and v.interval[1] == INF  # stable has no errors: no finite upper ratio
    assert v.sentence == "canary error rate 10.0% vs 0.0% stable (n=50/950), p<0.001 — rolling back"


def test_zero_errors_on_both_with_little_traffic_is_inconclusive() -> None:
    v = judge(Sample(20, 0), Sample(380, 0))
    assert v.outcome == "inconclusive"
    assert v.reason_code == "insufficient_data"
    assert v.sentence == "inconclusive: only 20 canary requests, need 200 — holding"


def test_too_little_stable_traffic_is_inconclusive() -> None:
    v = judge(Sample(400, 1), Sample(50, 0))
    assert v.outcome == "inconclusive"
    assert v.sentence == "inconclusive: only 50 stable requests, need 200 — holding"


def test_clear_error_regression_sentence_matches_the_issue() -> None:
    v = judge(Sample(812, 33), Sample(7240, 14))
    assert v.outcome == "fail"
    assert v.sentence == "canary error rate 4.1% vs 0.2% stable (n=812/7,240), p<0.001 — rolling back"
    assert v.effect_size == pytest.approx((33.5 / 812.5) / (14.5 / 7240.5))
    assert v.interval[0] > 1.0 and v.interval[0] < v.effect_size < v.interval[1]
    assert (v.canary_n, v.stable_n) == (812, 7240)


def test_healthy_canary_passes_with_a_sentence_naming_both_versions() -> None:
    v = judge(Sample(3100, 9, hist(3100)), Sample(9200, 37, hist(9200)))
    assert v.outcome == "pass"
    assert v.reason_code == "error_rate_ok"
    assert v.sentence.startswith("canary healthy: error rate 0.3% vs 0.4% stable, p95 ")
    assert v.sentence.endswith("(n=3,100/9,200) — promoting")
    assert {c.name for c in v.checks} == {"error_rate", "latency"}
    assert all(c.outcome == "pass" for c in v.checks)
    assert v.interval[0] < 1.0 < v.interval[1]


def test_enough_requests_but_a_worrying_unproven_rate_holds() -> None:
    # 3 of 200 vs 0 of 4000: not significant yet, but the bound cannot exclude a 3-point regression.
    v = judge(Sample(200, 3), Sample(4000, 2))
    assert v.outcome == "inconclusive"
    assert v.reason_code == "error_rate_unclear"
    assert "not yet clearly within tolerance" in v.sentence and v.sentence.endswith("— holding")


def test_slower_canary_fails_the_latency_test() -> None:
    slow = hist(2000, fast=0.2, mid=0.7, slow=0.9)
    v = judge(Sample(2000, 8, slow), Sample(6000, 25, hist(6000)))
    assert v.outcome == "fail"
    assert v.reason_code == "latency_worse"
    # The slow bound is the first bucket at least 25 ms above stable's p95 (247 ms): 500 ms.
    assert v.sentence.startswith("canary slower: 10.0% vs 1.0% of requests above 500 ms, p95 ")
    assert v.sentence.endswith("(n=2,000/6,000), p<0.001 — rolling back")


def test_a_few_milliseconds_slower_is_not_worth_a_rollback() -> None:
    """Significant but tiny: a cold canary at 9 ms p95 against 5 ms stable (seen on a busy host)."""
    bounds = (0.005, 0.01, 0.025, 0.05, 0.1)

    def ms_hist(n: int, fractions: tuple[float, ...]) -> tuple[tuple[float, int], ...]:
        return (*((b, round(n * f)) for b, f in zip(bounds, fractions, strict=True)), (INF, n))

    stable = ms_hist(6000, (0.95, 0.985, 0.999, 1.0, 1.0))
    canary = ms_hist(2000, (0.70, 0.93, 0.999, 1.0, 1.0))
    v = judge(Sample(2000, 0, canary), Sample(6000, 0, stable))
    assert v.outcome == "pass", v.sentence


def test_small_latency_difference_within_tolerance_does_not_fail() -> None:
    a_bit_slower = hist(5000, fast=0.48, mid=0.955, slow=0.99)
    v = judge(Sample(5000, 20, a_bit_slower), Sample(5000, 20, hist(5000)))
    assert v.outcome == "pass"


def test_slo_success_rate_guard_fails_even_when_stable_is_just_as_bad() -> None:
    cfg = JudgeConfig.from_slo(success_rate=99.0)
    v = judge(Sample(1000, 80), Sample(1000, 75), cfg)
    assert v.outcome == "fail"
    assert v.reason_code == "slo_success_rate"
    assert v.sentence == "canary success rate 92.0% is below the 99.0% SLO (n=1,000), p<0.001 — rolling back"
    assert v.interval[0] > 0.01  # the lower confidence bound on the error rate is above the budget


def test_slo_guard_holds_when_above_budget_but_not_proven() -> None:
    cfg = JudgeConfig.from_slo(success_rate=99.0)
    v = judge(Sample(300, 4), Sample(3000, 40), cfg)
    assert v.outcome == "inconclusive"
    assert v.reason_code == "slo_success_rate_unclear"


def test_slo_p99_guard_uses_the_histogram() -> None:
    cfg = JudgeConfig(max_p99_seconds=0.25)
    slow_tail = hist(3000, fast=0.5, mid=0.9, slow=0.99)  # 10% above 250 ms
    v = judge(Sample(3000, 9, slow_tail), Sample(3000, 9, slow_tail), cfg)
    assert v.outcome == "fail"
    assert v.reason_code == "slo_p99"
    assert v.sentence.startswith("canary p99 ") and "exceeds the 250 ms SLO (n=3,000)" in v.sentence


def test_slo_p99_guard_without_histogram_uses_the_point_estimate_after_min_sample() -> None:
    cfg = JudgeConfig(max_p99_seconds=1.0)
    assert judge(Sample(100, 0, p99=3.0), Sample(1000, 0), cfg).outcome == "inconclusive"
    v = judge(Sample(1000, 0, p99=3.0), Sample(1000, 0), cfg)
    assert v.outcome == "fail" and v.reason_code == "slo_p99"
    assert v.sentence == "canary p99 3 s exceeds the 1 s SLO (n=1,000), point estimate, no histogram — rolling back"
    assert judge(Sample(1000, 0, p99=0.4), Sample(1000, 0), cfg).outcome == "pass"


def test_verdict_is_json_safe() -> None:
    v = judge(Sample(50, 5), Sample(950, 0))
    data = json.loads(json.dumps(v.to_dict()))
    assert data["outcome"] == "fail"
    assert data["interval"][1] is None
    assert data["checks"][0]["name"] == "error_rate"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"requests": 10, "errors": 11}, "errors (11) cannot exceed requests (10)"),
        ({"requests": -1, "errors": 0}, "must be >= 0"),
        ({"requests": 10, "errors": 0, "latency_buckets": ((0.5, 5), (0.1, 6))}, "ascending bounds"),
        ({"requests": 10, "errors": 0, "latency_buckets": ((0.1, 6), (0.5, 5))}, "non-decreasing"),
        ({"requests": 10, "errors": 0, "p99": -1.0}, "p99 must be a non-negative"),
    ],
)
def test_bad_samples_are_rejected_with_a_clear_message(kwargs: dict, message: str) -> None:
    with pytest.raises(JudgeInputError, match=re.escape(message)):
        Sample(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.0}, "alpha must be between 0 and 1"),
        ({"min_requests": 0}, "min_requests"),
        ({"max_error_rate": 1.5}, "max_error_rate"),
        ({"latency_quantile": 0.2}, "latency_quantile"),
        ({"mixture_ratios": (1.1,), "mixture_weights": (1.0,)}, "must all exceed"),
        ({"mixture_ratios": (2.0, 3.0), "mixture_weights": (1.0,)}, "equal length"),
    ],
)
def test_bad_config_is_rejected_with_a_clear_message(kwargs: dict, message: str) -> None:
    with pytest.raises(JudgeInputError, match=re.escape(message)):
        JudgeConfig(**kwargs)


def test_from_slo_rejects_a_success_rate_that_is_not_a_percentage() -> None:
    with pytest.raises(JudgeInputError, match="percentage"):
        JudgeConfig.from_slo(success_rate=0.0)
    assert JudgeConfig.from_slo(success_rate=99.5).max_error_rate == pytest.approx(0.005)


def test_mismatched_histograms_are_an_input_error() -> None:
    other = ((0.2, 10), (INF, 20))
    with pytest.raises(JudgeInputError, match="share bucket bounds"):
        judge(Sample(20, 0, other), Sample(300, 0, hist(300)))


def test_verdict_carries_every_check() -> None:
    cfg = JudgeConfig(max_error_rate=0.05, max_p99_seconds=1.0)
    v: Verdict = judge(Sample(3000, 10, hist(3000)), Sample(3000, 11, hist(3000)), cfg)
    assert [c.name for c in v.checks] == ["slo_success_rate", "error_rate", "slo_p99", "latency"]
    assert v.outcome == "pass"
