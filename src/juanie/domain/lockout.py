"""How long failed logins lock a door: a few free tries, then a delay that doubles with every failure, capped.

Pure rules; `store/login_throttle.py` turns `Policy.steps()` into the one SQL statement that counts an attempt and
sets the lock together, so concurrent attempts cannot slip between a check and a write.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    """After `free` consecutive failures the door locks for `first_delay` seconds, doubling with every further
    failure up to `max_delay`. Failures are forgotten after `memory` seconds without an attempt."""

    free: int
    first_delay: float
    max_delay: float
    memory: float

    def delay(self, failures: int) -> float:
        """Seconds the door stays locked after the `failures`-th consecutive failure."""
        if failures < self.free:
            return 0.0
        return min(self.first_delay * 2.0 ** min(failures - self.free, 62), self.max_delay)

    def steps(self) -> list[tuple[int, float]]:
        """(failures, delay) for every count from `free` up to the first one that reaches `max_delay`."""
        out, failures = [], self.free
        while True:
            out.append((failures, self.delay(failures)))
            if self.delay(failures) >= self.max_delay:
                return out
            failures += 1


# One user from one address: 5 tries, then 2^k seconds after the k-th failure (32 s, 64 s, ... 15 min).
# Another address is never locked by these failures, so an attacker cannot lock the owner out.
PER_USER_AND_CLIENT = Policy(free=5, first_delay=32.0, max_delay=900.0, memory=24 * 3600.0)
# One address, any user (password spraying): 20 tries, then the same doubling; a successful login gives one back.
PER_CLIENT = Policy(free=20, first_delay=32.0, max_delay=900.0, memory=3600.0)
ANY_USER = ":any"  # the username PER_CLIENT counts under: HTTP Basic cannot send one with a colon
