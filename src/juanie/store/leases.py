"""Leader leases in the database, so that servers sharing one database never run the same controller twice.

The holder renews well inside the lease time; a contender takes the lease only when it has expired. Both steps are
single conditional UPDATEs (or one INSERT racing on the primary key), so the database decides, not the clocks'
agreement about who went first. Times are the servers' wall clocks, which on one host (or NTP-synced hosts) agree
far better than the lease duration.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from juanie.store.models import Lease


@dataclass(frozen=True)
class LeaseState:
    name: str
    holder: str
    expires_at: float
    transitions: int


def try_acquire(engine: Engine, name: str, holder: str, now: float, duration: float) -> bool:
    """Acquire or renew `name` for `holder`. True if `holder` holds the lease until now + duration."""
    expires = now + duration
    with engine.begin() as conn:
        renewed = conn.execute(
            update(Lease)
            .where(Lease.name == name, Lease.holder == holder)
            .values(renewed_at=now, expires_at=expires)
        ).rowcount
        if renewed:
            return True
        taken = conn.execute(
            update(Lease)
            .where(Lease.name == name, Lease.expires_at < now)
            .values(
                holder=holder,
                acquired_at=now,
                renewed_at=now,
                expires_at=expires,
                transitions=Lease.transitions + 1,
            )
        ).rowcount
        if taken:
            return True
        exists = conn.execute(select(Lease.name).where(Lease.name == name)).first()
        if exists:
            return False
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(Lease).values(
                    name=name,
                    holder=holder,
                    acquired_at=now,
                    renewed_at=now,
                    expires_at=expires,
                    transitions=1,
                )
            )
        return True
    except IntegrityError:
        return False


def release(engine: Engine, name: str, holder: str) -> None:
    """Give the lease up on a clean shutdown so that another server takes over at once."""
    with engine.begin() as conn:
        conn.execute(update(Lease).where(Lease.name == name, Lease.holder == holder).values(expires_at=0.0))


def current(engine: Engine, name: str) -> LeaseState | None:
    with engine.connect() as conn:
        row = conn.execute(select(Lease).where(Lease.name == name)).first()
    if row is None:
        return None
    return LeaseState(row.name, row.holder, row.expires_at, row.transitions)
