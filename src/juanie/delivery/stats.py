"""The sequential statistics behind the judge: always-valid tests and confidence sequences for counts.

Everything here is a pure function of cumulative counts, so the judge can be asked every second and its
guarantees still hold (see `juanie.delivery.judge` for why and for the literature). Two tools:

* `mixture_log_lr` — the log likelihood ratio of a *conditional binomial* mixture SPRT (mSPRT). Given `m` bad
  events (errors, or requests slower than a threshold) of which `x` hit the canary, and the canary's share `p0`
  of the requests, the canary's share of bad events is Binomial(m, q(θ)) with
  q(θ) = θ·p0 / (θ·p0 + 1 − p0), where θ is the ratio of the canary's bad-event rate to stable's. Mixing the
  likelihood ratio q(θ)^x (1−q(θ))^(m−x) / (q(θ0)^x (1−q(θ0))^(m−x)) over a discrete prior on θ > θ0 gives a
  non-negative martingale under H0: θ = θ0, so by Ville's inequality P(sup_t LR_t ≥ 1/α) ≤ α.
* `beta_binomial_cs` — Robbins' beta-binomial mixture confidence sequence for a proportion: the set of p whose
  mixture martingale is still below 1/α. It holds at every sample size at once (Howard et al., 2021).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import optimize

Buckets = tuple[tuple[float, int], ...]


def share_under_ratio(p0: float, theta: float) -> float:
    """The canary's expected share of bad events when its bad-event rate is `theta` times stable's."""
    if p0 <= 0.0:
        return 0.0
    if p0 >= 1.0 or math.isinf(theta):
        return 1.0
    return theta * p0 / (theta * p0 + 1.0 - p0)


def ratio_from_share(p0: float, share: float) -> float:
    """Inverse of `share_under_ratio`: which rate ratio makes the canary take `share` of the bad events."""
    if share >= 1.0:
        return math.inf
    if share <= 0.0:
        return 0.0
    return share * (1.0 - p0) / (p0 * (1.0 - share))


def _binom_loglik(x: int, m: int, q: float) -> float:
    """log q^x (1-q)^(m-x), with 0·log 0 = 0 so that boundary shares are handled exactly."""
    total = 0.0
    if x:
        total += -math.inf if q <= 0.0 else x * math.log(q)
    if m - x:
        total += -math.inf if q >= 1.0 else (m - x) * math.log1p(-q)
    return total


def mixture_log_lr(
    x: int, m: int, p0: float, theta0: float, ratios: Sequence[float], weights: Sequence[float]
) -> float:
    """Log of the mixture likelihood ratio for "canary's bad-event rate is above theta0 × stable's".

    `x` of `m` bad events hit the canary, which served a share `p0` of the requests. The alternatives are the
    rate ratios `ratios` (each above `theta0`) with prior `weights` (normalised here). Returns 0.0 (no
    evidence) when there is nothing to judge.
    """
    if m <= 0 or p0 <= 0.0 or p0 >= 1.0:
        return 0.0
    null = _binom_loglik(x, m, share_under_ratio(p0, theta0))
    total_w = float(sum(weights))
    terms = []
    for theta, w in zip(ratios, weights, strict=True):
        if w <= 0.0:
            continue
        alt = _binom_loglik(x, m, share_under_ratio(p0, theta))
        terms.append(math.log(w / total_w) + alt - null)
    if not terms:
        return 0.0
    top = max(terms)
    if math.isinf(top):
        return top
    return top + math.log(sum(math.exp(t - top) for t in terms))


def always_valid_p(log_lr: float) -> float:
    """The always-valid p-value min(1, 1/LR) (Johari et al.): P(p ever ≤ α | H0) ≤ α."""
    return 1.0 if log_lr <= 0.0 else math.exp(-log_lr)


def _betaln(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _beta_binomial_log_martingale(x: int, n: int, p: float, a: float, b: float) -> float:
    """log M_n(p): the Beta(a, b) mixture of likelihood ratios against the point null p."""
    log_mix = _betaln(a + x, b + n - x) - _betaln(a, b)
    return log_mix - _binom_loglik(x, n, p)


def beta_binomial_cs(
    x: int, n: int, alpha: float, a: float = 0.5, b: float = 0.5, lower: bool = True
) -> tuple[float, float]:
    """A (1 − α) confidence sequence for a proportion after `x` successes in `n` trials.

    It is the set {p : M_n(p) < 1/α} of Robbins' beta-binomial mixture martingale, valid simultaneously for
    every n (Howard, Ramdas, McAuliffe & Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence
    sequences", 2021). The Jeffreys prior Beta(½, ½) is the default because it is neutral about where p lies.
    With `lower=False` only the upper end is computed (the lower end is reported as 0).
    """
    if n <= 0:
        return (0.0, 1.0)
    # M_n(p) = mix / likelihood(p); the mixture term does not depend on p, so compute it once.
    offset = _betaln(a + x, b + n - x) - _betaln(a, b) - math.log(1.0 / alpha)
    centre = x / n

    def excess(p: float) -> float:
        return offset - _binom_loglik(x, n, p)

    eps = 1e-12
    skip_lo = not lower or x == 0 or excess(eps) <= 0.0  # lower=False: the caller needs only the upper end
    lo = 0.0 if skip_lo else optimize.brentq(excess, eps, centre, xtol=1e-10)
    hi = 1.0 if x == n or excess(1.0 - eps) <= 0.0 else optimize.brentq(excess, centre, 1.0 - eps, xtol=1e-10)
    return (float(lo), float(hi))


def histogram_total(buckets: Buckets) -> int:
    """Requests the histogram saw: the cumulative count of its last (+Inf) bucket."""
    return buckets[-1][1] if buckets else 0


def count_above(buckets: Buckets, le: float) -> int:
    """Requests slower than the bucket bound `le` (which must be one of the histogram's bounds)."""
    for bound, cumulative in buckets:
        if bound == le:
            return histogram_total(buckets) - cumulative
    raise KeyError(le)


def quantile_bound(buckets: Buckets, q: float) -> float | None:
    """The smallest bucket bound at or below which at least a fraction `q` of the requests fell."""
    total = histogram_total(buckets)
    if total <= 0:
        return None
    for bound, cumulative in buckets:
        if cumulative >= q * total:
            return bound
    return buckets[-1][0]


def histogram_quantile(buckets: Buckets, q: float) -> float | None:
    """Estimate the q-quantile by linear interpolation inside its bucket, as Prometheus does.

    Used only to describe latency in sentences; the tests work on counts, not on this estimate.
    """
    total = histogram_total(buckets)
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(bound):
                return prev_bound
            inside = cumulative - prev_count
            if inside <= 0:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / inside
        prev_bound, prev_count = bound, cumulative
    return prev_bound


def above_limit_p(bad: int, n: int, limit: float) -> float:
    """Always-valid p-value for "the share of bad requests is at most `limit`" (Jeffreys beta-binomial mixture)."""
    if n == 0 or limit <= 0.0 or bad / n <= limit:
        return 1.0
    return always_valid_p(_beta_binomial_log_martingale(bad, n, limit, 0.5, 0.5))
