"""The sequential statistics: confidence sequences cover, mixture likelihood ratios point the right way."""

from __future__ import annotations

import math

import numpy as np
import pytest

from juanie.delivery import stats

BUCKETS = ((0.1, 50), (0.25, 90), (0.5, 99), (math.inf, 100))


def test_share_and_ratio_are_inverse() -> None:
    for p0 in (0.05, 0.25, 0.5, 0.9):
        for theta in (0.5, 1.0, 2.0, 20.0):
            share = stats.share_under_ratio(p0, theta)
            assert stats.ratio_from_share(p0, share) == pytest.approx(theta)
    assert stats.share_under_ratio(0.3, 1.0) == pytest.approx(0.3)


def test_mixture_lr_is_zero_without_events_and_grows_with_canary_errors() -> None:
    ratios, weights = (2.0, 5.0), (1.0, 1.0)
    assert stats.mixture_log_lr(0, 0, 0.5, 1.0, ratios, weights) == 0.0
    balanced = stats.mixture_log_lr(5, 10, 0.5, 1.0, ratios, weights)
    lopsided = stats.mixture_log_lr(9, 10, 0.5, 1.0, ratios, weights)
    assert lopsided > balanced
    assert balanced < 0  # an even split is evidence *for* equal rates
    assert stats.always_valid_p(lopsided) < stats.always_valid_p(balanced) == 1.0


def test_mixture_lr_copes_with_all_errors_on_one_side() -> None:
    # Stable had zero errors: the canary holding every error is strong evidence, not a math error.
    log_lr = stats.mixture_log_lr(5, 5, 0.05, 1.0, (2.0, 10.0, 30.0), (1.0, 1.0, 1.0))
    assert math.isfinite(log_lr) and log_lr > math.log(100)


def test_beta_binomial_cs_edges() -> None:
    assert stats.beta_binomial_cs(0, 0, 0.05) == (0.0, 1.0)
    lo, hi = stats.beta_binomial_cs(0, 500, 0.05)
    assert lo == 0.0 and 0.0 < hi < 0.02
    lo, hi = stats.beta_binomial_cs(500, 500, 0.05)
    assert hi == 1.0 and lo > 0.98
    lo, hi = stats.beta_binomial_cs(30, 100, 0.05)
    assert lo < 0.3 < hi
    assert stats.beta_binomial_cs(30, 100, 0.05, lower=False)[0] == 0.0


def test_beta_binomial_cs_covers_the_true_rate_at_every_time() -> None:
    """Time-uniform coverage: the true p stays inside the sequence along the whole path in ≥ 1-α of paths."""
    rng = np.random.default_rng(7)
    alpha, p, misses, paths = 0.1, 0.02, 0, 200
    for _ in range(paths):
        draws = np.cumsum(rng.random(2000) < p)
        for n in range(50, 2001, 50):
            lo, hi = stats.beta_binomial_cs(int(draws[n - 1]), n, alpha)
            if not lo <= p <= hi:
                misses += 1
                break
    assert misses / paths <= alpha


def test_histogram_helpers() -> None:
    assert stats.histogram_total(BUCKETS) == 100
    assert stats.count_above(BUCKETS, 0.25) == 10
    assert stats.quantile_bound(BUCKETS, 0.95) == 0.5
    assert stats.quantile_bound((), 0.95) is None
    assert stats.histogram_quantile(BUCKETS, 0.5) == pytest.approx(0.1)
    assert 0.25 < (stats.histogram_quantile(BUCKETS, 0.95) or 0) < 0.5
    with pytest.raises(KeyError):
        stats.count_above(BUCKETS, 0.3)


def test_above_limit_p_is_small_only_when_clearly_above() -> None:
    assert stats.above_limit_p(1, 1000, 0.01) == 1.0
    assert stats.above_limit_p(80, 1000, 0.01) < 0.001
