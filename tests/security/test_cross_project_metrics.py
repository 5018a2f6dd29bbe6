"""Cross-project metrics: a member of project microshop asks microshop's query endpoints (API and CLI) for project
beta's series — by not naming a project label, by naming beta's, by matching every project, by grouping by project —
and gets microshop's series only; microshop's alert rules see only microshop's series; a project's own Prometheus is
sent the query with the project's label enforced; and an error from that Prometheus never shows what it answered.

Both projects' series are planted in the metric snapshot the server loads when it starts, labelled as the collector
labels them; an administrator's query across projects shows they are all there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.security.observe_attack_support import (
    FakePrometheus,
    member,
    plant_series,
    running,
    series,
    serve_prometheus,
)
from tests.server_support import Server, git, microshop_source
from tests.support import wait_until

pytestmark = pytest.mark.timeout(300)
QUERIES = ["up", '{project="beta"}', '{project=~".+"}', "sum by (project) (up)"]
MARKER = "remote-body-MARKER-7731"
PROBE = {  # fires for every environment whose gateway answered a 500 in the last hour
    "name": "CrossProjectProbe",
    "for": "0s",
    "expr": 'sum by (env) (rate(juanie_gateway_requests_total{code="500"}[1h])) > 0',
}


@dataclass
class World:
    server: Server
    amy: str  # viewer of microshop and gamma, nothing of beta
    prometheus: FakePrometheus  # gamma's Prometheus


def _add_probe(source: Path) -> None:
    path = source / "juanie.yaml"
    rule = yaml.safe_dump([PROBE], sort_keys=False, width=1000)
    path.write_text(path.read_text().replace("alerts:\n", "alerts:\n" + textwrap.indent(rule, "  "), 1))
    git(source, "commit", "-qam", "alerts: a rule over every environment's 500s")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("metrics")
    source = microshop_source(base / "source")
    _add_probe(source)
    plant_series(base / "data", ["microshop", "beta"], time.time())
    with serve_prometheus() as prometheus:
        env = {"JUANIE_OBSERVE_INTERVAL": "1", "JUANIE_ALERT_EVAL_INTERVAL": "1", "JUANIE_OBSERVE_RULES_REFRESH": "1",
               "JUANIE_ALLOWED_PRIVATE_URLS": prometheus.url + "/"}  # fmt: skip
        with running(base / "data", env) as server:
            server.ok("POST", "/api/projects", json={"name": "microshop", "repo_url": str(source)})
            server.ok("POST", "/api/projects", json={"name": "beta"})
            server.ok("POST", "/api/projects", json={"name": "gamma"})
            server.ok("PUT", "/api/projects/gamma/observe", json={"prometheus_url": prometheus.url})
            amy = member(server, "microshop", "amy", "viewer")
            member(server, "gamma", "amy", "viewer")
            yield World(server, amy, prometheus)


def _ask(world: World, project: str, query: str) -> list[dict]:
    now = time.time()
    instant = world.server.ok("GET", "/api/metrics/query", token=world.amy, params={"project": project, "query": query})
    ranged = world.server.ok(
        "GET",
        "/api/metrics/query_range",
        token=world.amy,
        params={"project": project, "query": query, "start": now - 600, "end": now, "step": "60s"},
    )
    return [instant, ranged]


def test_every_project_has_series_and_only_administrators_query_across_projects(world: World) -> None:
    everything = world.server.ok("GET", "/api/metrics/query", params={"query": "sum by (project) (up)"})
    assert {labels.get("project") for labels in series(everything)} >= {"microshop", "beta"}
    refused = world.server.api("GET", "/api/metrics/query", token=world.amy, params={"query": "up"})
    assert refused.status_code == 422 and "administrators" in refused.json()["error"]["message"]


@pytest.mark.parametrize("query", QUERIES)
def test_a_member_querying_their_project_sees_none_of_another_projects_series(world: World, query: str) -> None:
    instant, ranged = _ask(world, "microshop", query)
    for answer in (instant, ranged):
        assert {labels.get("project") for labels in series(answer)} <= {"microshop"}, answer
        assert "beta" not in json.dumps(answer["data"])
    if query != '{project="beta"}':
        assert series(instant), f"{query}: microshop's own series must answer, or the test proves nothing"


def test_the_cli_query_is_limited_to_the_project_too(world: World) -> None:
    env = {**os.environ, "JUANIE_URL": world.server.url, "JUANIE_TOKEN": world.amy, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "juanie.cli.main", "query", 'sum by (project) ({project=~".+"})', "-p", "microshop"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert 'project="microshop"' in done.stdout and "beta" not in done.stdout


def test_a_projects_alert_rules_see_only_its_series(world: World) -> None:
    def probes() -> list[dict]:
        params = {"project": "microshop", "alertname": PROBE["name"]}
        return world.server.ok("GET", "/api/alerts", params=params)["items"]

    wait_until(lambda: any(a["labels"].get("env") == "microshop-dev" for a in probes()), timeout=120, interval=0.5,
               message="microshop's probe rule to go off for microshop's own environment")  # fmt: skip
    assert {a["labels"].get("env") for a in probes()} == {"microshop-dev"}


def test_a_projects_prometheus_is_sent_the_query_with_the_projects_label_enforced(world: World) -> None:
    with world.prometheus.lock:
        world.prometheus.queries.clear()
    for query in QUERIES:
        _ask(world, "gamma", query)
    sent = list(world.prometheus.queries)
    assert len(sent) == 2 * len(QUERIES)
    assert sent[::2] == ['up{project="gamma"}', '{project="beta",project="gamma"}', '{project=~".+",project="gamma"}',
                         'sum by (project) (up{project="gamma"})']  # fmt: skip


def test_an_error_from_a_projects_prometheus_never_shows_what_it_answered(world: World) -> None:
    answers = [
        (500, json.dumps({"status": "error", "errorType": MARKER, "error": MARKER}).encode()),
        (400, json.dumps({"status": "error", "errorType": "bad_data", "error": MARKER}).encode()),
        (500, f"<html><body>{MARKER}</body></html>".encode()),
    ]
    with world.prometheus.lock:
        world.prometheus.script.extend(answers)
    for status, _ in answers:
        response = world.server.api("GET", "/api/metrics/query", token=world.amy,
                                    params={"project": "gamma", "query": "up"})  # fmt: skip
        assert response.status_code == 422, response.text
        assert MARKER not in response.text and f"HTTP {status}" in response.json()["error"]["message"]
