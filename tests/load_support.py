"""A bounded load loop on 127.0.0.1 for tests: steady requests per second, counts by outcome."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True)
class Answer:
    """One answer the load got, at monotonic time `t`: the status code (or the exception's name) and the
    gateway's `x-juanie-version` header ("" when absent), so a caller can tell which version served it."""

    t: float
    outcome: str
    version: str


@dataclass
class Load:
    """`with Load(url, rps, max_seconds) as load:` sends GETs until the block ends (or max_seconds pass)."""

    url: str
    rps: float = 40.0
    max_seconds: float = 300.0
    headers: dict[str, str] = field(default_factory=dict)
    keep_answers: bool = False  # also keep every Answer (for timelines: who served what, when)
    outcomes: Counter[str] = field(default_factory=Counter)
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    @property
    def failed(self) -> int:
        return sum(n for k, n in self.outcomes.items() if not k.startswith("2"))

    def since(self, t: float) -> list[Answer]:
        """The answers kept from monotonic time `t` on (needs keep_answers)."""
        return [a for a in list(self.answers) if a.t >= t]

    def _count(self, outcome: str, version: str = "") -> None:
        self.outcomes[outcome] += 1
        if self.keep_answers:
            self.answers.append(Answer(time.monotonic(), outcome, version))

    async def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=50)) as client:
            pending: set[asyncio.Task[None]] = set()

            async def one() -> None:
                try:
                    response = await client.get(self.url, headers=self.headers)
                    self._count(str(response.status_code), response.headers.get("x-juanie-version", ""))
                except httpx.HTTPError as exc:
                    self._count(type(exc).__name__)

            while not self._stop.is_set() and time.monotonic() < deadline:
                task = asyncio.create_task(one())
                pending.add(task)
                task.add_done_callback(pending.discard)
                await asyncio.sleep(1 / self.rps)
            if pending:
                await asyncio.wait(pending, timeout=15)
