"""Attacks on the password login, each against a real server on SQLite and PostgreSQL.

- guessing in parallel, hoping the attempts slip between the lockout's check and its count;
- locking the owner out by failing on purpose from the attacker's address;
- telling real usernames from unknown ones by how long a refusal takes;
- old password hashes, which must keep working and be replaced by argon2id.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
from sqlalchemy import create_engine, text

from tests.security.auth_attack_support import Target, login, scrypt_hash, serve

ATTEMPTS = 16


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    yield from serve(request, tmp_path_factory)


def _create_user(target: Target, username: str, password: str) -> None:
    target.server.ok("POST", "/api/users", json={"username": username, "password": password})


def _stored_hash(target: Target, username: str) -> str:
    engine = create_engine(target.database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT password_hash FROM users WHERE username = :u"), {"u": username}).scalar()
    finally:
        engine.dispose()


def test_concurrent_wrong_passwords_are_all_counted(target: Target) -> None:
    """16 wrong guesses at once from one address: exactly 5 are checked, the rest are refused by the lock."""
    server = target.server
    _create_user(target, "racer", "racer-right-password")
    with ThreadPoolExecutor(ATTEMPTS) as pool:
        responses = list(pool.map(lambda i: login(server, "racer", f"guess-{i}", "127.0.0.11"), range(ATTEMPTS)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [401] * 5 + [429] * (ATTEMPTS - 5), codes
    assert all(0 < int(r.headers["Retry-After"]) <= 32 for r in responses if r.status_code == 429)
    failures = server.ok("GET", "/api/events", params={"kind": "auth.login_failed", "subject": "user/racer"})
    assert len(failures["items"]) == 5
    locked = login(server, "racer", "racer-right-password", "127.0.0.11")
    assert locked.status_code == 429 and "try again in" in locked.json()["error"]["message"]


def test_a_lockout_never_locks_the_right_password_out_from_another_address(target: Target) -> None:
    server = target.server
    _create_user(target, "owner", "owner-right-password")
    codes = [login(server, "owner", f"attacker-guess-{i}", "127.0.0.21").status_code for i in range(7)]
    assert codes == [401] * 5 + [429] * 2
    assert login(server, "owner", "owner-right-password", "127.0.0.21").status_code == 429  # the attacker's door
    elsewhere = login(server, "owner", "owner-right-password", "127.0.0.22")
    assert elsewhere.status_code == 200, elsewhere.text
    assert server.ok("GET", "/api/me", token=elsewhere.json()["token"])["username"] == "owner"


def test_unknown_users_cost_the_same_hash_work_as_known_ones(target: Target) -> None:
    """The server's CPU time per refused login, interleaved: a wrong password for a real user and any password for
    a user that does not exist cost the same argon2id verification, and get the same answer."""
    server = target.server
    rounds = 9
    for i in range(rounds):  # a user and an address per round: one failure each, no lock gets in the way
        _create_user(target, f"known-{i}", "known-right-password")
    process = psutil.Process(server.proc.pid)

    def cpu_seconds_of(username: str, address: str) -> tuple[float, str]:
        before = sum(process.cpu_times()[:2])
        response = login(server, username, "not-the-password", address)
        assert response.status_code == 401, response.text
        return sum(process.cpu_times()[:2]) - before, response.json()["error"]["message"]

    known, unknown, messages = [], [], set()
    for i in range(rounds):
        cost, message = cpu_seconds_of(f"known-{i}", f"127.0.1.{i + 1}")
        known.append(cost)
        messages.add(message)
        cost, message = cpu_seconds_of(f"ghost-{i}", f"127.0.2.{i + 1}")
        unknown.append(cost)
        messages.add(message)
    assert messages == {"wrong username or password"}
    known_median, unknown_median = statistics.median(known), statistics.median(unknown)
    assert known_median > 0.02, f"a password check should cost real work, measured {known}"
    assert 0.5 < unknown_median / known_median < 2, f"known {known} vs unknown {unknown}"


def test_an_old_scrypt_hash_still_logs_in_and_is_upgraded_to_argon2id(target: Target) -> None:
    server = target.server
    _create_user(target, "oldtimer", "placeholder-password")
    assert _stored_hash(target, "oldtimer").startswith("$argon2id$")  # new hashes are argon2id
    engine = create_engine(target.database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET password_hash = :h WHERE username = 'oldtimer'"),
                     {"h": scrypt_hash("from-before-argon2")})
    engine.dispose()
    assert login(server, "oldtimer", "wrong-password", "127.0.0.41").status_code == 401
    assert _stored_hash(target, "oldtimer").startswith("scrypt$")  # a wrong password changes nothing
    assert login(server, "oldtimer", "from-before-argon2", "127.0.0.41").status_code == 200
    upgraded = _stored_hash(target, "oldtimer")
    assert upgraded.startswith("$argon2id$") and "from-before-argon2" not in upgraded
    assert login(server, "oldtimer", "from-before-argon2", "127.0.0.41").status_code == 200
    assert _stored_hash(target, "oldtimer") == upgraded  # upgraded once, not on every login
