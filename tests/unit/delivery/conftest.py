"""Real verdicts from the real judge, so planner tests exercise what a controller would pass in."""

from __future__ import annotations

import pytest

from juanie.delivery.judge import Sample, Verdict, judge


@pytest.fixture(scope="session")
def passing() -> Verdict:
    v = judge(Sample(3000, 9), Sample(3000, 10))
    assert v.outcome == "pass"
    return v


@pytest.fixture(scope="session")
def failing() -> Verdict:
    v = judge(Sample(50, 5), Sample(950, 0))
    assert v.outcome == "fail"
    return v


@pytest.fixture(scope="session")
def holding() -> Verdict:
    v = judge(Sample(20, 0), Sample(380, 0))
    assert v.outcome == "inconclusive"
    return v
