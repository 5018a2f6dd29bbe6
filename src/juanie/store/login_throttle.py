"""Failed-login counters: one row per (username, client address), each change a single statement.

An attempt is counted *before* its password is checked (`claim`), and the same UPDATE sets the lock that count
calls for, guarded by `locked_until <= now`. The database serialises UPDATEs of one row, so N concurrent attempts
are N increments and every attempt after the lock is refused without a password check — no read-modify-write
window, on SQLite and PostgreSQL alike. A right password then clears the count (`succeeded`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, delete, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from juanie.domain.lockout import Policy
from juanie.store.models import LoginThrottle

RETENTION = 24 * 3600.0  # rows untouched (and unlocked) this long are deleted


@dataclass(frozen=True)
class Claim:
    allowed: bool
    failures: int  # consecutive failures counted so far, this attempt included when allowed
    locked_until: float  # when refused: when the lock ends (epoch seconds); 0 when allowed


def _key(username: str, client: str) -> tuple[str, str]:
    return username[:64], client[:64]


def _is(key: tuple[str, str]):  # type: ignore[no-untyped-def]
    return (LoginThrottle.username == key[0]) & (LoginThrottle.client == key[1])


def _insert_missing(session: Session, key: tuple[str, str], now: float) -> bool:
    """Create the key's row unless it exists (a concurrent creator wins quietly); True if this call created it."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(LoginThrottle)
        .values(username=key[0], client=key[1], failures=0, locked_until=0.0, last_at=now)
        .on_conflict_do_nothing(index_elements=["username", "client"])
        .returning(LoginThrottle.username)
    )
    return session.execute(stmt).first() is not None


def claim(session: Session, username: str, client: str, policy: Policy, now: float) -> Claim:
    """Count one attempt as a failure and lock the key if `policy` says so; refused if the key is locked now.

    Commit the session before checking the password, so that concurrent attempts see this one.
    """
    key = _key(username, client)
    failures = case((LoginThrottle.last_at < now - policy.memory, 1), else_=LoginThrottle.failures + 1)
    locked_until = case(
        (failures < policy.free, now),
        *[(failures == count, now + delay) for count, delay in policy.steps()],
        else_=now + policy.max_delay,
    )
    while True:  # a stale row can be pruned by another attempt between our statements: then create it again
        if _insert_missing(session, key, now):
            prune(session, now)  # new rows are what grows the table, so they pay for its upkeep
        row = session.execute(
            update(LoginThrottle)
            .where(_is(key), LoginThrottle.locked_until <= now)
            .values(failures=failures, locked_until=locked_until, last_at=now)
            .returning(LoginThrottle.failures)
            .execution_options(synchronize_session=False)
        ).first()
        if row is not None:
            return Claim(True, row.failures, 0.0)
        locked = session.execute(select(LoginThrottle.failures, LoginThrottle.locked_until).where(_is(key))).first()
        if locked is not None:
            return Claim(False, locked.failures, locked.locked_until)


def succeeded(session: Session, username: str, client: str) -> None:
    """The right password: the key's failures and lock are cleared."""
    session.execute(
        update(LoginThrottle)
        .where(_is(_key(username, client)))
        .values(failures=0, locked_until=0.0)
        .execution_options(synchronize_session=False)
    )


def give_back(session: Session, username: str, client: str) -> None:
    """Uncount one claimed attempt that turned out not to be a failure (its lock, if any, stays)."""
    session.execute(
        update(LoginThrottle)
        .where(_is(_key(username, client)), LoginThrottle.failures > 0)
        .values(failures=LoginThrottle.failures - 1)
        .execution_options(synchronize_session=False)
    )


def prune(session: Session, now: float, older_than: float = RETENTION, limit: int = 1000) -> None:
    """Delete up to `limit` rows untouched for `older_than` seconds and unlocked. Rows another transaction holds are
    skipped (PostgreSQL's SKIP LOCKED), so pruning inside a claim never waits for, or deadlocks with, other claims."""
    stale = (
        select(LoginThrottle.username, LoginThrottle.client)
        .where(LoginThrottle.last_at < now - older_than, LoginThrottle.locked_until < now)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    session.execute(
        delete(LoginThrottle)
        .where(tuple_(LoginThrottle.username, LoginThrottle.client).in_(stale))
        .execution_options(synchronize_session=False)
    )
