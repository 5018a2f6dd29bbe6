"""Metrics: the embedded store, scraping, the PromQL-subset query engine and the Prometheus backend."""

from juanie.observe.metrics.model import Sample, Series
from juanie.observe.metrics.prometheus_backend import PrometheusBackend, PrometheusError, QueryBackend
from juanie.observe.metrics.promql import PromQLError, parse
from juanie.observe.metrics.query import QueryEngine, QueryError
from juanie.observe.metrics.result import QueryResult
from juanie.observe.metrics.scrape import ScrapeError, Scraper, ScrapeTarget, parse_exposition, scrape
from juanie.observe.metrics.store import MetricStore, SeriesLimitError, SnapshotError

__all__ = [
    "MetricStore",
    "PromQLError",
    "PrometheusBackend",
    "PrometheusError",
    "QueryBackend",
    "QueryEngine",
    "QueryError",
    "QueryResult",
    "Sample",
    "ScrapeError",
    "ScrapeTarget",
    "Scraper",
    "Series",
    "SeriesLimitError",
    "SnapshotError",
    "parse",
    "parse_exposition",
    "scrape",
]
