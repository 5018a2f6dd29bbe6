"""Token buckets and summary digests, with time passed in."""

from __future__ import annotations

import pytest

from juanie.domain.ratelimit import Digest, TokenBuckets


def test_a_bucket_allows_a_burst_then_refills_at_its_rate():
    buckets: TokenBuckets[str] = TokenBuckets(rate=1.0, burst=3)
    assert [buckets.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", 0.0) == pytest.approx(1.0)
    assert buckets.take("a", 0.5) == pytest.approx(0.5)  # a refused take takes nothing
    assert buckets.take("a", 1.0) == 0.0
    assert buckets.take("a", 100.0) == 0.0 and buckets.take("a", 100.0) == 0.0 and buckets.take("a", 100.0) == 0.0
    assert buckets.take("a", 100.0) > 0  # refilled to the burst, never beyond


def test_buckets_are_per_key_and_given_back_tokens_do_not_exceed_the_burst():
    buckets: TokenBuckets[tuple[str, str]] = TokenBuckets(rate=0.1, burst=1)
    assert buckets.take(("shop", "10.0.0.1"), 0.0) == 0.0
    assert buckets.take(("shop", "10.0.0.1"), 0.0) > 0
    assert buckets.take(("shop", "10.0.0.2"), 0.0) == 0.0
    assert buckets.take(("blog", "10.0.0.1"), 0.0) == 0.0
    buckets.give_back(("shop", "10.0.0.1"), 0.0)
    buckets.give_back(("shop", "10.0.0.1"), 0.0)
    assert buckets.take(("shop", "10.0.0.1"), 0.0) == 0.0
    assert buckets.take(("shop", "10.0.0.1"), 0.0) > 0


def test_bucket_memory_is_bounded():
    buckets: TokenBuckets[int] = TokenBuckets(rate=1.0, burst=1, max_keys=10)
    for key in range(1000):
        buckets.take(key, 0.0)
    assert len(buckets) == 10


def test_a_digest_summarises_the_first_occurrence_then_at_most_once_an_interval():
    digest = Digest(interval=60.0)
    first = digest.add("shop", "bad_signature", 0.0)
    assert first is not None and first.counts == {"bad_signature": 1}
    assert all(digest.add("shop", reason, t) is None for t, reason in
               [(1.0, "bad_signature"), (2.0, "rate_limited"), (59.0, "rate_limited")])  # fmt: skip
    later = digest.add("shop", "no_signature", 61.0)
    assert later is not None and later.total == 4
    assert later.counts == {"bad_signature": 1, "rate_limited": 2, "no_signature": 1}
    assert (later.since, later.until) == (0.0, 61.0)
    assert digest.add("blog", "replayed", 61.5) is not None  # keys are summarised apart


def test_digest_memory_is_bounded():
    digest = Digest(interval=60.0, max_keys=5)
    for i in range(100):
        digest.add(f"project-{i}", "bad_signature", 0.0)
    assert len(digest) == 5
