"""Failed-login counters on both backends: one statement per attempt, so concurrent attempts are all counted."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from juanie.domain.lockout import PER_USER_AND_CLIENT as POLICY
from juanie.store import login_throttle as throttle
from juanie.store.db import Database
from juanie.store.models import LoginThrottle

NOW = 1_700_000_000.0


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


def _claim(db: Database, now: float = NOW, username: str = "bob", client: str = "10.0.0.1") -> throttle.Claim:
    with db.session() as s:
        return throttle.claim(s, username, client, POLICY, now)


def test_concurrent_claims_are_each_counted_and_only_the_free_ones_allowed(db):
    with ThreadPoolExecutor(12) as pool:
        claims = list(pool.map(lambda _: _claim(db), range(24)))
    allowed = sorted(c.failures for c in claims if c.allowed)
    assert allowed == [1, 2, 3, 4, 5]
    refused = [c for c in claims if not c.allowed]
    assert len(refused) == 19 and all(c.locked_until == pytest.approx(NOW + 32) for c in refused)


def test_the_lock_doubles_then_a_success_clears_it_and_other_addresses_are_untouched(db):
    for _ in range(5):
        assert _claim(db).allowed
    assert not _claim(db, NOW + 31).allowed
    sixth = _claim(db, NOW + 32)
    assert sixth.allowed and sixth.failures == 6
    assert _claim(db, NOW + 33).locked_until == pytest.approx(NOW + 32 + 64)
    assert _claim(db, NOW + 33, client="10.0.0.2").allowed  # another address: its own count
    with db.session() as s:
        throttle.succeeded(s, "bob", "10.0.0.1")
    assert _claim(db, NOW + 34).failures == 1


def test_failures_are_forgotten_after_a_quiet_day_and_old_rows_pruned(db):
    for _ in range(5):
        _claim(db)
    later = NOW + POLICY.memory + 1
    assert _claim(db, later).failures == 1
    _claim(db, later + throttle.RETENTION + 1, username="someone-else")  # a new row prunes the stale ones
    with db.session() as s:
        assert [r.username for r in s.query(LoginThrottle)] == ["someone-else"]


def test_giving_back_never_goes_below_zero(db):
    _claim(db)
    with db.session() as s:
        throttle.give_back(s, "bob", "10.0.0.1")
        throttle.give_back(s, "bob", "10.0.0.1")
    assert _claim(db).failures == 1
