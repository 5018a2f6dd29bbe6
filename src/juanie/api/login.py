"""Password logins: the lockout per (user, address), the same hash work for every username, the hash upgrade.

1. The attempt is counted as a failure before the password is checked, for the user from this address and for the
   address across all users (`store.login_throttle.claim`, one UPDATE each, committed first). A locked key is
   refused with 429 and `Retry-After`, without a password check. Failures from one address never lock another
   address out, so an attacker cannot lock the owner out.
2. The password is checked with one argon2id verification whether or not the user exists or is active (a dummy
   hash stands in): the answer and its timing are the same for a wrong password and an unknown user.
3. A right password clears the user's count from this address and gives the address its attempt back; a hash in an
   older format (or with weaker parameters) is replaced by a fresh argon2id hash of the same password.
"""

from __future__ import annotations

import math
import time

from sqlalchemy import select

from juanie.domain import events as kinds
from juanie.domain.credentials import check_password, hash_password
from juanie.domain.errors import RateLimited, Unauthorized
from juanie.domain.lockout import ANY_USER, PER_CLIENT, PER_USER_AND_CLIENT
from juanie.store import accounts
from juanie.store import login_throttle as throttle
from juanie.store.db import Database
from juanie.store.events import record
from juanie.store.models import User
from juanie.telemetry import ServerMetrics

WRONG = "wrong username or password"


def check_login(db: Database, metrics: ServerMetrics, username: str, password: str, client: str) -> None:
    """Return if `password` is `username`'s; raise `RateLimited` (429) or `Unauthorized` (401) otherwise."""
    now = time.time()
    with db.session() as s:
        own = throttle.claim(s, username, client, PER_USER_AND_CLIENT, now)
        wide = throttle.claim(s, ANY_USER, client, PER_CLIENT, now) if own.allowed else own
    if not (own.allowed and wide.allowed):
        metrics.login_attempts.labels("locked").inc()
        wait = max(1, math.ceil(max(own.locked_until, wide.locked_until) - time.time()))
        raise RateLimited(f"too many failed logins from this address; try again in {wait} s", retry_after=wait)

    with db.session() as s:
        found = s.execute(
            select(User.id, User.password_hash, User.is_active).where(User.username == username)
        ).first()
    stored = found.password_hash if found is not None else None
    check = check_password(password, stored)
    ok = check.ok and found is not None and found.is_active
    upgraded = hash_password(password) if ok and check.rehash else None  # before the write transaction opens

    with db.session() as s:
        if ok:
            throttle.succeeded(s, username, client)
            throttle.give_back(s, ANY_USER, client)
            if upgraded is not None and stored is not None:
                accounts.upgrade_password_hash(s, found.id, stored, upgraded)
        else:
            record(s, actor=username[:64] or "anonymous", kind=kinds.LOGIN_FAILED, subject=f"user/{username[:64]}",
                   data={"client": client, "failures": own.failures})
    metrics.login_attempts.labels("succeeded" if ok else "failed").inc()
    if not ok:
        raise Unauthorized(WRONG)
