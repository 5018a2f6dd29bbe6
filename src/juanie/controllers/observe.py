"""Observe, live in the server: the metric store and its collectors, every project's alerting, and the controller
that runs both on the leader.

``ObserveService`` owns the embedded store (snapshotted to the data directory and reloaded on start), answers
queries (or forwards them to a project's Prometheus), and runs two reconcile keys on timers: ``collect`` (gateway,
processes, scrapes; compaction and snapshots) and ``alerts`` (evaluate, route, send, record).

A project's queries, wherever they come from (API, CLI, pages, its alert rules), only ever see its own series:
``backend_for(project)`` wraps the backend in ``ScopedBackend``. Connections to users' URLs (channels, a project's
Prometheus) follow ``egress``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from juanie.controllers import observe_records as records
from juanie.controllers.observe_alerting import ProjectAlerting, RoundResult
from juanie.controllers.observe_collect import Collector
from juanie.controllers.observe_rules import (
    RuleSet,
    Timing,
    default_group_by,
    metrics_paths,
    owners,
    rules_for_spec,
)
from juanie.controllers.runner import Controller, Requeue
from juanie.egress import EgressPolicy
from juanie.observe.alerts.config import RuleConfigError, rules_from_config
from juanie.observe.alerts.model import Alert
from juanie.observe.alerts.rules import LogLine, LogRule, count_log_lines
from juanie.observe.metrics.prometheus_backend import PrometheusBackend, QueryBackend
from juanie.observe.metrics.query import QueryEngine
from juanie.observe.metrics.scoping import ScopedBackend
from juanie.observe.metrics.store import MetricStore, SnapshotError
from juanie.observe.notify.notifier import Notifier
from juanie.spec import ProjectSpec

log = logging.getLogger("juanie.observe")

NAME = "observe"


class ConfigError(ValueError):
    """An observe setting (a ``JUANIE_*`` variable) that is not a valid number."""


def _number(env: Mapping[str, str], name: str, default: float, minimum: float = 0.001) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a number of seconds, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name}: expected at least {minimum:g}, got {raw!r}")
    return value


@dataclass(frozen=True)
class ObserveConfig:
    """Timers and bounds, from ``JUANIE_*`` variables with production defaults (Prometheus/Alertmanager's)."""

    interval: float = 15.0  # JUANIE_OBSERVE_INTERVAL: collection and scrape interval
    eval_interval: float = 15.0  # JUANIE_ALERT_EVAL_INTERVAL
    scrape_timeout: float = 10.0  # JUANIE_SCRAPE_TIMEOUT
    group_wait: float = 30.0  # JUANIE_ALERT_GROUP_WAIT
    group_interval: float = 300.0  # JUANIE_ALERT_GROUP_INTERVAL
    repeat_interval: float = 4 * 3600.0  # JUANIE_ALERT_REPEAT_INTERVAL
    rules_refresh: float = 60.0  # JUANIE_OBSERVE_RULES_REFRESH: how often juanie.yaml's rules are re-read
    snapshot_every: float = 300.0  # JUANIE_METRICS_SNAPSHOT_SECONDS
    retention_raw: float = 24 * 3600.0  # JUANIE_METRICS_RETENTION_RAW
    rollup_step: float = 300.0  # JUANIE_METRICS_ROLLUP_STEP
    retention_rollup: float = 30 * 24 * 3600.0  # JUANIE_METRICS_RETENTION
    max_series: int = 50_000  # JUANIE_METRICS_MAX_SERIES
    notify_attempts: int = 4  # JUANIE_NOTIFY_ATTEMPTS
    external_url: str = ""  # JUANIE_EXTERNAL_URL: links in notifications

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, default_url: str = "") -> ObserveConfig:
        env = os.environ if env is None else env
        interval = _number(env, "JUANIE_OBSERVE_INTERVAL", 15.0)
        return cls(
            interval=interval,
            eval_interval=_number(env, "JUANIE_ALERT_EVAL_INTERVAL", interval),
            scrape_timeout=_number(env, "JUANIE_SCRAPE_TIMEOUT", min(10.0, interval)),
            group_wait=_number(env, "JUANIE_ALERT_GROUP_WAIT", 30.0, 0.0),
            group_interval=_number(env, "JUANIE_ALERT_GROUP_INTERVAL", 300.0),
            repeat_interval=_number(env, "JUANIE_ALERT_REPEAT_INTERVAL", 4 * 3600.0),
            rules_refresh=_number(env, "JUANIE_OBSERVE_RULES_REFRESH", 60.0),
            snapshot_every=_number(env, "JUANIE_METRICS_SNAPSHOT_SECONDS", 300.0),
            retention_raw=_number(env, "JUANIE_METRICS_RETENTION_RAW", 24 * 3600.0),
            rollup_step=_number(env, "JUANIE_METRICS_ROLLUP_STEP", 300.0),
            retention_rollup=_number(env, "JUANIE_METRICS_RETENTION", 30 * 24 * 3600.0),
            max_series=int(_number(env, "JUANIE_METRICS_MAX_SERIES", 50_000, 1)),
            notify_attempts=int(_number(env, "JUANIE_NOTIFY_ATTEMPTS", 4, 1)),
            external_url=env.get("JUANIE_EXTERNAL_URL", "") or default_url,
        )

    @property
    def timing(self) -> Timing:
        return Timing(self.group_wait, self.group_interval, self.repeat_interval)


def own_ports(settings: Any) -> list[int]:
    """The ports this server listens on (API, gateway, gateway admin): never a target of a user's URL."""
    return [int(getattr(settings, name)) for name in ("port", "gateway_port", "gateway_admin_port")
            if getattr(settings, name, None)]  # fmt: skip


class ObserveService:
    def __init__(self, state: Any, config: ObserveConfig, egress: EgressPolicy | None = None) -> None:
        self.state = state  # juanie.api.state.AppState: db, box, specs, engine (read lazily)
        self.config = config
        self.egress = egress if egress is not None else EgressPolicy.from_env(own_ports=own_ports(state.settings))
        self.store = MetricStore(config.retention_raw, config.rollup_step, config.retention_rollup, config.max_series)
        self.engine_query = QueryEngine(self.store)
        self.collector = Collector(self.store, config.interval, config.scrape_timeout)
        self.notifier = Notifier(max_attempts=config.notify_attempts, egress=self.egress)
        self.projects: dict[str, ProjectAlerting] = {}
        self.snapshot_path = Path(state.settings.data_dir) / "observe" / "metrics.npz"
        self._prometheus: dict[str, PrometheusBackend] = {}
        self._specs: dict[str, tuple[float, ProjectSpec | None, str]] = {}
        self._last_snapshot = time.time()
        self._last_compact = 0.0

    # -- lifecycle -------------------------------------------------------------------------------------------
    def load_snapshot(self) -> None:
        """Reload what the previous run saved; a damaged snapshot is logged and set aside, never fatal."""
        if not self.snapshot_path.exists():
            return
        try:
            self.store.load(self.snapshot_path)
            log.info("observe: loaded %d series from %s", self.store.series_count(), self.snapshot_path)
        except SnapshotError as exc:
            log.warning("observe: %s; starting with an empty metric store", exc)
            self.snapshot_path.replace(self.snapshot_path.with_suffix(".damaged"))

    def save_snapshot(self) -> None:
        self.store.snapshot(self.snapshot_path)
        self._last_snapshot = time.time()

    async def aclose(self) -> None:
        await self.collector.aclose()
        await self.notifier.aclose()
        for backend in self._prometheus.values():
            backend.close()
        self._prometheus.clear()

    def controller(self) -> Controller:
        async def list_keys() -> Iterable[Hashable]:
            return ["collect", "alerts"]

        return Controller(name=NAME, reconcile=self.reconcile, list_keys=list_keys, resync_seconds=60.0, workers=2)

    async def reconcile(self, key: Hashable) -> Requeue | None:
        if key == "collect":
            await self.collect_round()
            return Requeue(after=self.config.interval)
        if key == "alerts":
            await self.alert_round()
            return Requeue(after=self.config.eval_interval)
        return None

    # -- metrics ---------------------------------------------------------------------------------------------
    async def collect_round(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        known = await asyncio.to_thread(records.known_namespaces, self.state.db)
        paths = {p: metrics_paths(self._specs.get(p, (0.0, None, ""))[1]) for p, _ in set(known.values())}
        await self.collector.collect(self.state.engine, known, paths, now)
        if now - self._last_compact >= 60.0:
            await asyncio.to_thread(self.store.compact, now)
            self._last_compact = now
        if now - self._last_snapshot >= self.config.snapshot_every:
            await asyncio.to_thread(self.save_snapshot)

    def backend_for(self, project: str | None) -> QueryBackend:
        """The project's Prometheus when it configured one, else the embedded engine; limited to the project's
        series (``project="<name>"`` enforced in every selector). ``None`` (every project) is for administrators."""
        url = records.observe_settings(self.state.db, project)["prometheus_url"] if project else ""
        backend: QueryBackend = self.engine_query
        if url:
            if url not in self._prometheus:
                self._prometheus[url] = PrometheusBackend(url, egress=self.egress)
            backend = self._prometheus[url]
        return ScopedBackend(backend, project) if project else backend

    # -- alerting --------------------------------------------------------------------------------------------
    def _spec(self, project: str) -> tuple[ProjectSpec | None, str]:
        """The newest release's ``juanie.yaml``; before the first release, the default branch's (blocking)."""
        specs = self.state.specs
        try:
            spec = specs.latest(project)
            if spec is not None:
                return spec, ""
            from juanie.controllers.pipelines import source_repo
            from juanie.store import projects as project_store

            with self.state.db.session() as s:
                branch = project_store.get_project(s, project).default_branch
            repo = source_repo(specs.ctx, self.state.db, self.state.box, project)
            heads = repo.fetch()
            sha = heads.get(branch) or repo.resolve(branch)
            return specs.at_commit(project, sha), ""
        except Exception as exc:  # a broken or unreachable juanie.yaml is shown on the rules, not raised
            return None, f"{type(exc).__name__}: {exc}"

    async def _configure(self, project: str, team: str, now: float) -> ProjectAlerting:
        alerting = self.projects.get(project)
        if alerting is None:
            alerting = self.projects[project] = ProjectAlerting(project)
        if alerting.dispatcher is not None and now - alerting.loaded_at < self.config.rules_refresh:
            return alerting
        spec, error = await asyncio.to_thread(self._spec, project)
        settings = await asyncio.to_thread(records.observe_settings, self.state.db, project)
        embedded = not settings["prometheus_url"]
        ruleset = rules_for_spec(spec, embedded) if spec is not None else RuleSet(errors={"juanie.yaml": error})
        ruleset = _with_log_rules(ruleset, settings["log_rules"])
        owner_map = owners(spec, team) if spec is not None else {}
        teams = sorted({t for t in [*owner_map.values(), team] if t})
        alerting.configure(ruleset, default_group_by(spec), teams, owner_map, self.config.timing)
        alerting.loaded_at, alerting.spec_error = now, error
        self._specs[project] = (now, spec, error)
        return alerting

    async def alert_round(self, now: float | None = None) -> dict[str, RoundResult]:
        now = time.time() if now is None else now
        results: dict[str, RoundResult] = {}
        for project, team in await asyncio.to_thread(records.alerting_projects, self.state.db):
            try:
                results[project] = await self._project_round(project, team, now)
            except Exception:  # one project's failure must not stop the others' alerts
                log.exception("observe: alerting round of %s failed", project)
        return results

    async def _project_round(self, project: str, team: str, now: float) -> RoundResult:
        alerting = await self._configure(project, team, now)
        backend = await asyncio.to_thread(self.backend_for, project)

        def query_fn(expr: str, at: float) -> list[tuple[dict[str, str], float]]:
            return backend.query(expr, at).samples()

        count_fn = self._log_counter(project) if any(isinstance(r, LogRule) for r in alerting.rules.rules) else None
        result = await alerting.evaluate(query_fn, count_fn, now, self.config.external_url)
        await asyncio.to_thread(records.apply_transitions, self.state.db, project, result.transitions,
                                result.annotations)  # fmt: skip
        return await self._dispatch(alerting, project, team, now, result)

    async def _dispatch(
        self, alerting: ProjectAlerting, project: str, team: str, now: float, result: RoundResult
    ) -> RoundResult:
        db, box = self.state.db, self.state.box
        silences = await asyncio.to_thread(records.silences_for, db, project, now)
        teams = sorted({t for t in [*alerting.owners.values(), team] if t})
        receivers, send_resolved = await asyncio.to_thread(
            records.receivers_for, db, box, project, teams, self.config.external_url
        )
        await alerting.dispatch(now, silences, receivers, send_resolved, self.notifier.send, result)
        await asyncio.to_thread(records.record_deliveries, db, project, result.deliveries)
        return result

    async def receive_external(self, project: str, team: str, alerts: list[Alert], actor: str) -> list[Alert]:
        """Alerts from an Alertmanager webhook: routed like Juanie's own, listed, recorded."""
        now = time.time()
        alerting = await self._configure(project, team, now)
        routed = alerting.receive(alerts, now)
        await asyncio.to_thread(records.receive_external, self.state.db, project, routed, now, actor)
        return routed

    def _log_counter(self, project: str) -> Any:
        engine = self.state.engine
        db = self.state.db

        def count(rule: LogRule, start: float, end: float) -> list[tuple[dict[str, str], int]]:
            if engine is None or not hasattr(engine, "data_dir"):
                return []
            from juanie.engines.local.logs import read_logs

            namespaces = [ns for ns, (p, _) in records.known_namespaces(db).items() if p == project]
            lines: list[LogLine] = []
            for ns in namespaces:
                for r in read_logs(Path(engine.data_dir) / "envs" / ns / "logs", None, start, 0):
                    labels = {"project": project, "env": ns, "service": r.service, "version": r.version,
                              "instance": r.instance, "level": r.level, "stream": r.stream}  # fmt: skip
                    lines.append(LogLine(r.ts, labels, r.raw))
            return count_log_lines(lines, rule, start, end)

        return count


def _with_log_rules(ruleset: RuleSet, entries: list[dict[str, Any]]) -> RuleSet:
    if not entries:
        return ruleset
    try:
        extra = rules_from_config(entries, "log_rules")
    except RuleConfigError as exc:
        return RuleSet(ruleset.rules, {**ruleset.errors, "log_rules": str(exc)})
    return RuleSet([*ruleset.rules, *extra], ruleset.errors)
