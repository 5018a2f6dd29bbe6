"""A replica that goes away stops being a target at once, and its `up` goes with it (Prometheus's staleness): a
rolling update must not leave `up == 0` answering for a process that no longer exists.

The engine here is a stand-in that reports what a local engine's status would (one replica, then none); the
scrape itself is real, against a port on 127.0.0.1 where nothing listens (as when a replica is being stopped)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from juanie.controllers.observe_collect import Collector
from juanie.engines.base import EnvRef
from juanie.observe.metrics.query import QueryEngine
from juanie.observe.metrics.store import MetricStore
from tests.support import free_port


@dataclass
class _Workload:
    name: str
    instances: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Status:
    workloads: list[_Workload]


@dataclass
class _Engine:
    workloads: list[_Workload]

    def env_refs(self) -> list[EnvRef]:
        return [EnvRef("shop", "dev", "shop-dev")]

    async def status(self, ref: EnvRef) -> _Status:
        return _Status(self.workloads)


def test_a_replica_that_is_gone_leaves_no_up_series_behind() -> None:
    store = MetricStore()
    collector = Collector(store, interval=1.0, scrape_timeout=1.0)
    replica = {"name": "api-1", "port": free_port(), "pid": None, "track": "stable", "version": "v1"}
    engine = _Engine([_Workload("api", [replica])])
    known = {"shop-dev": ("shop", "dev")}

    async def rounds() -> None:
        await collector.collect(engine, known, {}, now=1000.0)  # stopping: the scrape fails, up is 0
        engine.workloads = [_Workload("api", [])]  # the rolling update removed it
        await collector.collect(engine, known, {}, now=1001.0)
        await collector.aclose()

    asyncio.run(rounds())
    query = QueryEngine(store)
    assert [r["metric"]["service"] for r in query.query("up == 0", 1000.5).result] == ["api"]  # history kept
    assert query.query("up == 0", 1002.0).result == []
    assert query.query("up", 1100.0).result == []
    assert query.query("scrape_samples_scraped", 1002.0).result == []
    assert collector.stats.targets == {}
