"""Scraping services' ``/metrics`` (Prometheus text format) into the store, with ``up`` per target.

``parse_exposition`` is the pure part; ``scrape`` and ``Scraper`` are the HTTP edge. Samples carry ``job`` and
``instance`` exactly as Prometheus would label them, so the same queries match in both backends.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from juanie.observe.metrics.model import Sample
from juanie.observe.metrics.store import MetricStore

_COUNTER_TYPES = ("counter", "histogram", "summary", "gaugehistogram")


class ScrapeError(RuntimeError):
    """A target that did not answer, answered non-2xx, or answered with text that is not the exposition format."""


@dataclass(frozen=True)
class ParsedScrape:
    samples: list[Sample]
    types: dict[str, str]  # sample name -> "counter" | "gauge"


def parse_exposition(text: str, ts: float, extra_labels: Mapping[str, str] | None = None) -> ParsedScrape:
    """Parse exposition text into samples stamped ``ts`` (a sample's own timestamp wins), labelled with extras."""
    extra = dict(extra_labels or {})
    samples: list[Sample] = []
    types: dict[str, str] = {}
    try:
        for family in text_string_to_metric_families(text):
            kind = "counter" if family.type in _COUNTER_TYPES else "gauge"
            for s in family.samples:
                if (family.type in ("summary",) and "quantile" in s.labels) or s.name.endswith("_created"):
                    types[s.name] = "gauge"
                else:
                    types[s.name] = kind
                labels = {**s.labels, **extra}
                sample_ts = float(s.timestamp) if s.timestamp is not None else ts
                samples.append(Sample(s.name, labels, float(s.value), sample_ts))
    except (ValueError, TypeError, IndexError) as exc:
        raise ScrapeError(f"not Prometheus text exposition format: {exc}") from None
    return ParsedScrape(samples, types)


async def scrape(
    url: str,
    timeout: float,
    client: httpx.AsyncClient | None = None,
    ts: float | None = None,
    extra_labels: Mapping[str, str] | None = None,
) -> ParsedScrape:
    """Fetch and parse one target; raises ``ScrapeError`` with the reason on any failure."""
    own = client is None
    http = client or httpx.AsyncClient()
    try:
        response = await http.get(url, timeout=timeout, headers={"Accept": "text/plain;version=0.0.4"})
    except httpx.TimeoutException:
        raise ScrapeError(f"scrape of {url} timed out after {timeout}s") from None
    except httpx.HTTPError as exc:
        raise ScrapeError(f"scrape of {url} failed: {type(exc).__name__}: {exc}") from None
    finally:
        if own:
            await http.aclose()
    if not 200 <= response.status_code < 300:
        raise ScrapeError(f"scrape of {url} answered HTTP {response.status_code}")
    return parse_exposition(response.text, time.time() if ts is None else ts, extra_labels)


@dataclass(frozen=True)
class ScrapeTarget:
    """One endpoint; ``job`` and ``instance`` (default ``host:port``) become labels as in Prometheus."""

    job: str
    url: str
    interval: float = 15.0
    timeout: float = 10.0
    labels: Mapping[str, str] = field(default_factory=dict)
    instance: str | None = None

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.timeout <= 0:
            raise ValueError(f"scrape target {self.job}: interval and timeout must be positive seconds")
        if self.timeout > self.interval:
            raise ValueError(f"scrape target {self.job}: timeout {self.timeout}s exceeds interval {self.interval}s")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"scrape target {self.job}: URL must start with http:// or https://, got {self.url!r}")

    @property
    def target_labels(self) -> dict[str, str]:
        instance = self.instance or urlsplit(self.url).netloc
        return {**self.labels, "job": self.job, "instance": instance}


@dataclass
class TargetHealth:
    up: bool = False
    last_scrape: float | None = None
    last_duration: float | None = None
    last_error: str | None = None
    samples: int = 0


class Scraper:
    """Scrapes each target on its own interval into ``store``; records ``up`` and ``scrape_duration_seconds``."""

    def __init__(self, store: MetricStore, targets: list[ScrapeTarget], clock: Callable[[], float] = time.time) -> None:
        jobs = [(t.job, t.url) for t in targets]
        if len(set(jobs)) != len(jobs):
            raise ValueError("scrape targets must be unique by (job, url)")
        self.store = store
        self.targets = targets
        self.clock = clock
        self.health: dict[tuple[str, str], TargetHealth] = {(t.job, t.url): TargetHealth() for t in targets}
        self._client = httpx.AsyncClient()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def scrape_once(self, target: ScrapeTarget) -> TargetHealth:
        """Scrape ``target`` now and write its samples plus ``up``/``scrape_*`` series; never raises ScrapeError."""
        started = self.clock()
        labels = target.target_labels
        health = self.health[(target.job, target.url)]
        try:
            parsed = await scrape(target.url, target.timeout, self._client, ts=started, extra_labels=labels)
        except ScrapeError as exc:
            health.up, health.last_error, health.samples = False, str(exc), 0
        else:
            for name, kind in parsed.types.items():
                self.store.set_type(name, kind)
            health.samples = self.store.append_many(parsed.samples)
            health.up, health.last_error = True, None
        duration = max(self.clock() - started, 0.0)
        health.last_scrape, health.last_duration = started, duration
        self.store.append("up", labels, 1.0 if health.up else 0.0, started)
        self.store.append("scrape_duration_seconds", labels, duration, started)
        self.store.append("scrape_samples_scraped", labels, float(health.samples), started)
        return health

    async def run(self, stop: asyncio.Event) -> None:
        """Scrape every target on its interval until ``stop`` is set."""
        await asyncio.gather(*(self._loop(t, stop) for t in self.targets))

    async def _loop(self, target: ScrapeTarget, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            await self.scrape_once(target)
            wait = max(target.interval - (time.monotonic() - started), 0.0)
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait if math.isfinite(wait) else target.interval)
            except TimeoutError:
                continue
