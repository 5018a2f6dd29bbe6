"""The login lockout's schedule: free tries, then a doubling delay, capped."""

from __future__ import annotations

from juanie.domain.lockout import ANY_USER, PER_CLIENT, PER_USER_AND_CLIENT, Policy


def test_five_free_tries_then_two_to_the_k_seconds_capped_at_fifteen_minutes():
    delays = [PER_USER_AND_CLIENT.delay(n) for n in range(1, 12)]
    assert delays == [0, 0, 0, 0, 32, 64, 128, 256, 512, 900, 900]
    assert PER_USER_AND_CLIENT.delay(10**6) == 900  # no overflow however long an attack goes on


def test_steps_list_every_count_until_the_cap():
    assert PER_USER_AND_CLIENT.steps() == [(5, 32), (6, 64), (7, 128), (8, 256), (9, 512), (10, 900)]
    assert Policy(free=1, first_delay=5, max_delay=5, memory=60).steps() == [(1, 5)]
    assert PER_CLIENT.steps()[0] == (20, 32)


def test_failures_are_remembered_longer_than_the_longest_lock():
    for policy in (PER_USER_AND_CLIENT, PER_CLIENT):
        assert policy.memory > policy.max_delay


def test_the_any_user_key_cannot_be_sent_as_a_username():
    assert ":" in ANY_USER  # HTTP Basic splits the username at the first colon
