"""The run, GitOps and deployment pages in-process against a real SQLite store and a real GitOps repository."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from juanie.api.app import create_app
from juanie.domain.rbac import EnvPermission
from juanie.gitops import CommitMessage
from juanie.render import ReleaseRef
from juanie.settings import Settings
from juanie.spec import load_spec
from juanie.store import accounts
from juanie.store import deployments as deploy_store
from juanie.store import pipelines as run_store
from juanie.store import projects as project_store
from juanie.store.models import PipelineRun

MICROSHOP = Path(__file__).resolve().parents[3] / "examples" / "microshop" / "juanie.yaml"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'juanie.db'}", run_controllers=False, engine="none"
    )
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as test_client:
        yield test_client


def _attributes(page: str, name: str) -> list[str]:
    """Every value of attribute `name` in `page`, decoded as a browser would."""
    found: list[str] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.extend(v or "" for k, v in attrs if k == name)

    Collect().feed(page)
    return found


def _db(client: TestClient):  # type: ignore[no-untyped-def]
    return client.app.state.juanie.db  # type: ignore[attr-defined]


def _sign_in(client: TestClient, name: str) -> None:
    client.cookies.clear()
    response = client.post("/api/auth/login", auth=(name, "password-123"), json={"session": True})
    assert response.status_code == 200, response.text


def _setup(client: TestClient) -> None:
    """Users own (owner of shop), dev (developer), view (viewer), out (no role); one project `shop`."""
    with _db(client).session() as s:
        for name in ("own", "dev", "view", "out"):
            accounts.create_user(s, name, password="password-123")
        project = project_store.create_project(s, name="shop", actor=accounts.get_user(s, "own"))
        project.status = "active"
        for name, role in (("dev", accounts.Role.developer), ("view", accounts.Role.viewer)):
            accounts.set_membership(s, project, role=role, user=accounts.get_user(s, name), actor="own")


def _run(client: TestClient, steps: list[dict], status: str = "running", error: str = "") -> int:
    with _db(client).session() as s:
        project = project_store.get_project(s, "shop")
        run = run_store.queue_run(
            s,
            project,
            branch="main",
            commit_sha="a1b2c3d4e5f6a7b8",
            trigger="manual",
            actor="own",
            commit_message="shop: add <checkout>\n\nbody",
            author="Dev",
        )
        run.steps, run.status, run.error = steps, status, error
        return run.id


def test_run_page_draws_waves_with_states_and_durations_and_hides_controls_from_viewers(client: TestClient) -> None:
    _setup(client)
    t0 = time.time() - 100
    run_id = _run(
        client,
        [
            {
                "key": "build/build",
                "stage": "build",
                "step": "build",
                "state": "succeeded",
                "started": t0,
                "finished": t0 + 65,
                "exit_code": 0,
            },
            {
                "key": "test/test",
                "stage": "test",
                "step": "test",
                "state": "failed",
                "started": t0 + 66,
                "finished": t0 + 70,
                "exit_code": 2,
            },
            {"key": "quality/quality", "stage": "quality", "step": "quality", "state": "running", "started": t0 + 66},
            {"key": "package/package", "stage": "package", "step": "package", "state": "queued"},
        ],
        error="step test/test failed",
    )
    _sign_in(client, "dev")
    page = client.get(f"/projects/shop/runs/{run_id}")
    assert page.status_code == 200
    text = page.text
    waves = re.findall(r'<li class="wave">(.*?)</li>\s*(?=<li class="wave">|</ol>)', text, re.S)
    assert [re.findall(r'data-stage="(\w+)"', w) for w in waves] == [["build"], ["test", "quality"], ["package"]]
    assert "1m 05s" in text and "exit 2" in text and "step test/test failed" in text
    assert 'data-stage="test"' in text and "stage tone-bad" in text
    assert "shop: add &lt;checkout&gt;" in text  # the commit subject, escaped
    assert "data-run-cancel" in text and "Run again" in text
    _sign_in(client, "view")
    viewer_page = client.get(f"/projects/shop/runs/{run_id}").text
    assert "data-run-cancel" not in viewer_page and "Run again" not in viewer_page
    _sign_in(client, "out")
    assert client.get(f"/projects/shop/runs/{run_id}").status_code == 404


def test_a_run_of_another_project_is_not_found_under_this_one(client: TestClient) -> None:
    _setup(client)
    run_id = _run(client, [])
    with _db(client).session() as s:
        project_store.create_project(s, name="other", actor=accounts.get_user(s, "own"))
    _sign_in(client, "own")
    assert client.get(f"/projects/other/runs/{run_id}").status_code == 404
    assert "Pipeline run not found" in client.get("/projects/shop/runs/999999").text


def _commit(client: TestClient, env: str, version: str, reason: str) -> str:
    spec = load_spec(MICROSHOP)
    message = CommitMessage(
        project="shop", environment=env, release=version, actor="own", reason=reason, deployment="7", strategy="rolling"
    )
    repos = client.app.state.juanie.gitops  # type: ignore[attr-defined]
    return repos.commit_environment("shop", spec, env, ReleaseRef(version, {}), message)


def test_gitops_page_lists_history_per_environment_and_diffs_two_revisions_side_by_side(client: TestClient) -> None:
    _setup(client)
    first = _commit(client, "dev", "aaaa11112222", "first deploy")
    second = _commit(client, "dev", "bbbb33334444", "second deploy")
    staging = _commit(client, "staging", "aaaa11112222", "to staging")
    _sign_in(client, "view")
    everything = client.get("/projects/shop/gitops").text
    assert all(sha[:8] in everything for sha in (first, second, staging))
    dev_only = client.get("/projects/shop/gitops?env=dev").text
    assert first[:8] in dev_only and second[:8] in dev_only and staging[:8] not in dev_only
    assert "second deploy" in dev_only
    diff_page = client.get(f"/projects/shop/gitops?env=dev&a={first}&b={second}")
    assert diff_page.status_code == 200
    text = html.unescape(diff_page.text)
    assert re.search(r'<td class="diff-code d-del">.*?aaaa11112222', text, re.S)
    assert re.search(r'<td class="diff-code d-add">.*?bbbb33334444', text, re.S)
    assert "rendered/dev/" in text


def test_gitops_page_explains_bad_revisions_instead_of_failing(client: TestClient) -> None:
    _setup(client)
    _commit(client, "dev", "aaaa11112222", "first deploy")
    _sign_in(client, "own")
    bad = client.get("/projects/shop/gitops?a=zzzz&b=1234")
    assert bad.status_code == 200 and "must both be commit ids" in bad.text
    unknown = client.get("/projects/shop/gitops?a=deadbeef&b=cafebabe")
    assert unknown.status_code == 200 and "could not be read" in unknown.text
    empty = TestClient(client.app, base_url="http://127.0.0.1")
    empty.cookies.update(client.cookies)
    _sign_in(client, "out")
    assert client.get("/projects/shop/gitops").status_code == 404


def _deployment(client: TestClient, env: str = "staging", status: str = "running", **state: object) -> int:
    with _db(client).session() as s:
        project = project_store.get_project(s, "shop")
        environment = project_store.get_environment(s, project, env)
        dep = deploy_store.create_deployment(
            s, project, environment, release="bbbb33334444", strategy="canary", actor="own", reason="ship the checkout"
        )
        if status != "pending":
            deploy_store.transition(s, project, environment, dep, "running", actor="controller")
        dep.state = dict(state)
        return dep.id


ROLLOUT = {"phase": "analysing", "canary_weight": 25, "step_index": 1}
VERDICTS = [
    {
        "at": 1_900_000_000.0,
        "outcome": "inconclusive",
        "reason_code": "insufficient_data",
        "sentence": "inconclusive: only 12 canary requests, need 200 — holding",
    },
    {
        "at": 1_900_000_030.0,
        "outcome": "pass",
        "reason_code": "healthy",
        "sentence": "canary healthy: error rate 0.10% vs 0.12% stable (n=1,204/3,611) — promoting",
    },
]


def test_deployment_page_shows_weights_steps_verdicts_and_the_controls_that_apply(client: TestClient) -> None:
    _setup(client)
    dep_id = _deployment(
        client,
        rollout=ROLLOUT,
        verdicts=VERDICTS,
        signals={"stable": {"requests": 3611, "errors": 4, "rate": 60.2, "latency_p95": 0.081}},
    )
    _sign_in(client, "dev")
    text = client.get(f"/projects/shop/deployments/{dep_id}").text
    assert "canary healthy: error rate 0.10% vs 0.12% stable" in text
    assert text.index("canary healthy") < text.index("inconclusive: only 12")  # newest first
    marks = re.findall(r'<li class="mark mark-(\w+)" data-weight="(\d+)"', text)
    assert marks == [("done", "5"), ("current", "25"), ("next", "50"), ("next", "100")]
    assert re.search(r"data-w-canary-text>25%", text) and re.search(r"data-w-stable-text>75%", text)
    assert re.search(r'data-control="pause"[^>]*>', text) and not re.search(r'data-control="pause"[^>]*hidden', text)
    assert re.search(r'data-control="retry"[^>]*hidden', text)
    assert "0.11%" in text and "81 ms" in text  # error ratio and p95 of stable
    assert "deployment.created" in text and "ship the checkout" in text
    _sign_in(client, "view")
    viewer = client.get(f"/projects/shop/deployments/{dep_id}").text
    assert "data-control=" not in viewer and "canary healthy" in viewer
    _sign_in(client, "out")
    assert client.get(f"/projects/shop/deployments/{dep_id}").status_code == 404
    assert (
        client.get(
            f"/api/ui/deployments/{dep_id}", headers={"X-CSRF-Token": client.cookies.get("juanie_csrf", "")}
        ).status_code
        == 404
    )


def test_ui_deployment_json_has_the_api_shape_with_derived_weights(client: TestClient) -> None:
    _setup(client)
    dep_id = _deployment(client, rollout=ROLLOUT, verdicts=VERDICTS)
    _sign_in(client, "view")
    body = client.get(f"/api/ui/deployments/{dep_id}").json()
    assert body["weights"] == {"stable": 75, "canary": 25}
    assert body["phase"] == "analysing" and body["status"] == "running" and body["environment"] == "staging"
    assert body["approval"]["status"] == "requested" and body["approval"]["mode"] == "optional"
    assert [v["outcome"] for v in body["verdicts"]] == ["inconclusive", "pass"]


def test_project_page_links_runs_lists_releases_and_offers_actions_by_permission(client: TestClient) -> None:
    _setup(client)
    run_id = _run(client, [], status="succeeded")
    with _db(client).session() as s:
        project = project_store.get_project(s, "shop")
        run = s.get(PipelineRun, run_id)
        run_store.record_release(
            s,
            project,
            run,
            {"user": {"image": "juanie.local/shop/user:a1b2c3d4e5f6", "content_hash": "sha256:00"}},
            actor="controller",
        )
    dep_id = _deployment(client, env="staging", status="pending")
    _sign_in(client, "dev")
    text = client.get("/projects/shop").text
    assert f'href="/projects/shop/runs/{run_id}"' in text
    assert "a1b2c3d4e5f6" in text and ">user</span>" in text  # the release and its service
    assert f"/api/deployments/{dep_id}/approve" in text and "waiting for approval" in text
    assert "Promote from dev" in text and "Promote from staging" not in text  # prod's deploys are restricted
    with _db(client).session() as s:
        project = project_store.get_project(s, "shop")
        accounts.set_env_grant(s, project, project_store.get_environment(s, project, "prod"),
                               permission=EnvPermission.deploy, user=accounts.get_user(s, "dev"), actor="own")
    text = client.get("/projects/shop").text
    assert "Promote from dev" in text and "Promote from staging" in text  # granted deploy on prod
    assert "Run pipeline" not in text  # no source repository: nothing to run
    bodies = _attributes(text, "data-body")
    assert bodies and all(isinstance(json.loads(b), dict) for b in bodies)  # what the buttons send parses
    assert {"env": "staging"} in [json.loads(b) for b in bodies]  # roll back where something was deployed
    _sign_in(client, "view")
    viewer = client.get("/projects/shop").text
    assert "/approve" not in viewer and "Promote from" not in viewer and "Deploy to" not in viewer


def test_an_overridden_approval_is_shown_in_red_with_who_and_why(client: TestClient) -> None:
    _setup(client)
    dep_id = _deployment(client, env="prod", status="pending")
    with _db(client).session() as s:
        project = project_store.get_project(s, "shop")
        env = project_store.get_environment(s, project, "prod")
        dep = deploy_store.get_deployment(s, dep_id)
        deploy_store.decide(s, project, env, deploy_store.approval_of(s, dep), "overridden", actor="own",
                            reason="hotfix INC-42")
    _sign_in(client, "view")
    text = client.get(f"/projects/shop/deployments/{dep_id}").text
    notice = re.search(r'<p class="notice tone-bad"[^>]*data-approval-override[^>]*>(.*?)</p>', text, re.S)
    assert notice and "hidden" not in notice.group(0).split(">", 1)[0]
    assert "own · hotfix INC-42" in notice.group(1)
    assert re.search(r'<span class="chip tone-bad" title="overridden">', text)
    staging = client.get(f"/projects/shop/deployments/{_deployment(client, status='pending')}").text
    assert re.search(r"data-approval-override[^>]* hidden", staging)  # an ordinary approval: no red notice
