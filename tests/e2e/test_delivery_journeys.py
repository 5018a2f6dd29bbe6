"""Delivery journeys in real headless Chromium against a real Juanie server: a pipeline run watched live, the
GitOps history and a side-by-side diff, and a deployment page that follows its rollout as the record changes.

The project is microshop in a real git repository; the pipeline really builds and tests it (about 30 seconds,
once). Deployments are written into the server's SQLite database through the store, as the delivery controller
would write them. The `new_page` fixture fails a journey if the browser asked anything of another host.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from juanie.controllers.gitops import GitOpsRepos
from juanie.gitops import CommitMessage
from juanie.render import ReleaseRef
from juanie.spec import load_spec
from juanie.store import deployments as deploy_store
from juanie.store import projects as project_store
from juanie.store.db import Database
from juanie.store.models import Deployment
from tests.e2e.ui_helpers import screenshot
from tests.server_support import microshop_source
from tests.support import wait_until

expect = pytest.importorskip("playwright.sync_api").expect
PROJECT = "microshop"
LIVE_MS = 20_000
PIPELINE_MS = 240_000


@pytest.fixture(scope="module")
def shop(server, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """A microshop project whose source is a real git repository on this host."""
    source = microshop_source(tmp_path_factory.mktemp("shop") / "source")
    with server.api() as api:
        response = api.post("/api/projects", json={"name": PROJECT, "repo_url": str(source)})
        assert response.status_code == 201, response.text
        wait_until(
            lambda: api.get(f"/api/projects/{PROJECT}").json()["status"] == "active",
            timeout=60,
            interval=0.3,
            message="microshop to become active",
        )
    return source


@pytest.fixture(scope="module")
def store(server) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    """The server's own database file, opened from this process (SQLite in WAL mode allows both)."""
    db = Database(f"sqlite:///{server.data_dir / 'juanie.db'}")
    yield db
    db.dispose()


def test_run_the_pipeline_from_the_project_page_and_watch_its_log_arrive_live(
    server, shop, new_page, admin_cookies
) -> None:
    page, _log = new_page(admin_cookies())
    page.goto(f"{server.url}/projects/{PROJECT}")
    page.get_by_role("button", name="Run pipeline").click()
    expect(page).to_have_url(re.compile(rf"/projects/{PROJECT}/runs/\d+$"), timeout=LIVE_MS)
    # A queued run is drawn before it is planned; the page redraws itself once its steps exist.
    expect(page.locator("[data-step-key]")).to_have_count(4, timeout=LIVE_MS)
    expect(page.locator(".wave")).to_have_count(3)
    expect(page.locator(".wave").nth(1).locator("[data-stage]")).to_have_count(2)  # test and quality side by side
    page.evaluate("""() => {
        window.__sameDocument = true;
        const run = document.querySelector('[data-run]');
        new MutationObserver((changes, observer) => {
            if (document.querySelector('.log-line')) {
                window.__firstLineWhileActive = run.dataset.runActive === '1';
                observer.disconnect();
            }
        }).observe(document.querySelector('[data-log-src]'), {childList: true});
    }""")
    expect(page.locator(".log-line").first).to_be_visible(timeout=LIVE_MS)
    expect(page.locator("[data-live-status]")).to_have_text("Live")
    expect(page.locator("[data-run-status] .chip")).to_have_text("succeeded", timeout=PIPELINE_MS)
    expect(page.locator("[data-log-src]")).to_have_attribute("data-ended", "1", timeout=LIVE_MS)
    assert page.evaluate("window.__sameDocument") is True, "the log and the states arrived without a reload"
    assert page.evaluate("window.__firstLineWhileActive") is True, "the first log line came while the run ran"
    for stage in ("build", "test", "quality", "package"):
        expect(page.locator(f'[data-stage="{stage}"]')).to_have_class(re.compile(r"\btone-ok\b"))
    expect(page.locator('[data-stage="build"] [data-stage-duration]')).to_have_text(re.compile(r"\d"))
    lines = page.locator(".log-line").count()
    assert lines > 5

    # Search: the count, the highlight, and "only matching lines".
    word = page.locator('.log-line[data-step="test/test"] .log-text').last.inner_text().strip().split()[0]
    page.get_by_label("Search the log").fill(word)
    expect(page.locator("[data-log-count]")).to_have_text(re.compile(r"^\d+ match"))
    matched = page.locator(".log-line.is-match").count()
    assert 1 <= matched <= lines
    page.get_by_label("Only matching lines").check()
    expect(page.locator(".log-line:visible")).to_have_count(matched)
    page.get_by_label("Only matching lines").uncheck()
    page.get_by_label("Search the log").fill("")
    # Clicking a step in the graph shows only its lines.
    page.locator('[data-log-step="build/build"]').click()
    visible = page.locator(".log-line:visible")
    assert visible.count() >= 1
    assert set(page.locator(".log-line:visible").evaluate_all("rows => rows.map(r => r.dataset.step)")) == {
        "build/build"
    }
    page.locator('[data-log-step="build/build"]').click()
    screenshot(page, "09-pipeline-run")

    # ANSI colours become classes; markup inside a log line stays text.
    html = page.evaluate(
        """(text) => {
        const div = document.createElement('div');
        div.append(window.JuanieAnsi.fragment(text));
        return div.innerHTML;
    }""",
        "\x1b[1;31mFAILED\x1b[0m <img src=x onerror=alert(1)> \x1b[32mok",
    )
    assert '<span class="ansi-red ansi-bold">FAILED</span>' in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img" not in html
    assert '<span class="ansi-green">ok</span>' in html

    # The project page lists the run and the release it produced.
    page.goto(f"{server.url}/projects/{PROJECT}")
    expect(page.locator(".runs-table tbody tr").first).to_contain_text("succeeded")
    release = page.locator(".releases-table tbody tr").first
    expect(release).to_contain_text("payment")
    expect(release.locator("a")).to_have_attribute("href", re.compile(r"/runs/\d+$"))
    screenshot(page, "10-project-board-releases")


def _gitops_commit(server: Any, env: str, version: str, reason: str) -> str:
    spec = load_spec(Path(__file__).resolve().parents[2] / "examples" / "microshop" / "juanie.yaml")
    message = CommitMessage(
        project=PROJECT,
        environment=env,
        release=version,
        actor="e2e",
        reason=reason,
        deployment="1",
        strategy="rolling",
    )
    return GitOpsRepos(server.data_dir).commit_environment(PROJECT, spec, env, ReleaseRef(version, {}), message)


def test_gitops_history_per_environment_and_a_side_by_side_diff(server, shop, new_page, admin_cookies) -> None:
    first = _gitops_commit(server, "dev", "1111aaaa2222", "first deploy to dev")
    second = _gitops_commit(server, "dev", "3333bbbb4444", "second deploy to dev")
    _gitops_commit(server, "staging", "1111aaaa2222", "promote to staging")
    page, _log = new_page(admin_cookies())
    page.goto(f"{server.url}/projects/{PROJECT}")
    page.get_by_role("link", name="GitOps history").click()
    history = page.locator(".gitops-history tbody tr")
    for reason in ("first deploy to dev", "second deploy to dev", "promote to staging"):
        expect(history.filter(has_text=reason)).to_have_count(1)
    page.get_by_role("link", name="dev", exact=True).click()
    rows = page.locator(".gitops-history tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("second deploy to dev")
    expect(rows.first).to_contain_text("3333bbbb4444")
    rows.first.get_by_role("link", name="Changes").click()
    expect(page).to_have_url(re.compile(rf"a={first}&b={second}$"))
    removed = page.locator("td.d-del", has_text="1111aaaa2222").first
    added = page.locator("td.d-add", has_text="3333bbbb4444").first
    expect(removed).to_be_visible()
    expect(added).to_be_visible()
    # Side by side: the old line and its replacement sit in the same row.
    same_row = page.locator("table.diff tr", has=page.locator("td.d-del", has_text="1111aaaa2222")).first
    expect(same_row.locator("td.d-add")).to_contain_text("3333bbbb4444")
    screenshot(page, "11-gitops-diff")


SENTENCES = [
    "inconclusive: only 14 canary requests, need 200 — holding",
    "canary healthy: error rate 0.10% vs 0.12% stable (n=1,204/3,611) — promoting",
]


OLD, NEW = "1111aaaa2222", "3333bbbb4444"


def _insert_deployment(db: Database) -> int:
    with db.session() as s:
        project = project_store.get_project(s, PROJECT)
        env = project_store.get_environment(s, project, "staging")
        dep = deploy_store.create_deployment(
            s, project, env, release=NEW, strategy="canary", actor="e2e", reason="ship the new checkout"
        )
        deploy_store.transition(s, project, env, dep, "running", actor="controller:delivery")
        # The shape the delivery controller keeps: the rollout (with its verdicts), weights, and signals per
        # service and version.
        dep.state = {
            "rollout": {
                "phase": "analysing",
                "canary_weight": 5,
                "step_index": 0,
                "verdicts": [
                    {
                        "at": 1_900_000_000.0,
                        "outcome": "inconclusive",
                        "reason_code": "insufficient_data",
                        "sentence": SENTENCES[0],
                    }
                ],
            },
            "weights": {"stable": 95, "canary": 5},
            "signals": {
                "order": {
                    OLD: {"requests": 900, "errors": 1, "rate": 30.0, "latency_p95": 0.080},
                    NEW: {"requests": 14, "errors": 0, "rate": 1.5, "latency_p95": 0.090},
                }
            },
        }
        return dep.id


def _advance(db: Database, dep_id: int) -> None:
    """What the controller writes after the next step: more traffic, a passing verdict, new signals."""
    with db.session() as s:
        dep = s.get(Deployment, dep_id)
        state = dict(dep.state)
        verdicts = [
            *state["rollout"]["verdicts"],
            {"at": 1_900_000_030.0, "outcome": "pass", "reason_code": "healthy", "sentence": SENTENCES[1]},
        ]
        state["rollout"] = {"phase": "analysing", "canary_weight": 25, "step_index": 1, "verdicts": verdicts}
        state["weights"] = {"stable": 75, "canary": 25}
        state["signals"] = {
            "order": {
                OLD: {"requests": 3611, "errors": 4, "rate": 60.0, "latency_p95": 0.081},
                NEW: {"requests": 1204, "errors": 1, "rate": 20.0, "latency_p95": 0.085},
            }
        }
        dep.state = state


def test_deployment_page_follows_weights_verdicts_and_signals_live(
    server, shop, store, new_page, admin_cookies
) -> None:
    dep_id = _insert_deployment(store)
    page, _log = new_page(admin_cookies())
    page.goto(f"{server.url}/projects/{PROJECT}/deployments/{dep_id}")
    expect(page.get_by_role("heading", name=f"Deployment #{dep_id}")).to_be_visible()
    expect(page.locator(".verdict-sentence")).to_have_text([SENTENCES[0]])
    expect(page.locator("[data-w-canary-text]")).to_have_text("5%")
    expect(page.locator(".mark-current")).to_have_attribute("data-weight", "5")
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    expect(page.get_by_role("button", name="Abort")).to_be_visible()
    expect(page.get_by_role("button", name="Retry")).to_be_hidden()
    expect(page.locator("[data-approval-status] .chip")).to_have_text("requested")  # staging asks for approval
    expect(page.locator(".events .event-kind").first).to_have_text(re.compile(r"^(deployment|approval)\."))
    page.evaluate("window.__sameDocument = true")

    _advance(store, dep_id)
    expect(page.locator(".verdict-sentence").first).to_have_text(SENTENCES[1], timeout=LIVE_MS)
    expect(page.locator("[data-w-canary-text]")).to_have_text("25%")
    expect(page.locator("[data-w-stable-text]")).to_have_text("75%")
    expect(page.locator(".mark-done")).to_have_count(1)
    expect(page.locator("[data-signals-body]")).to_contain_text("3611")
    # Two samples per version so far (page load and after the change): the charts draw lines per version.
    expect(page.locator('[data-chart="rate"] polyline.chart-line')).to_have_count(2, timeout=LIVE_MS)
    legend = page.locator('[data-chart="errors"] .chart-legend')
    expect(legend).to_have_count(2)
    assert sorted(legend.all_text_contents()) == [OLD, f"{NEW} (new)"]
    assert page.evaluate("window.__sameDocument") is True
    screenshot(page, "12-deployment-live")

    page.goto(f"{server.url}/projects/{PROJECT}")
    column = page.locator('[data-env="staging"]')
    expect(column.get_by_text("waiting for approval")).to_be_visible()
    expect(column.get_by_role("button", name="Approve")).to_be_visible()
    expect(column.get_by_text("Promote from dev")).to_be_visible()


def test_delivery_pages_fit_a_phone_without_sideways_scrolling(server, shop, store, new_page, admin_cookies) -> None:
    with server.api() as api:
        runs = api.get(f"/api/projects/{PROJECT}/runs").json()["items"]
    with store.session() as s:
        dep_id = s.query(Deployment.id).order_by(Deployment.id.desc()).limit(1).scalar()
    paths = [f"/projects/{PROJECT}/gitops?env=dev", f"/projects/{PROJECT}"]
    paths += [f"/projects/{PROJECT}/runs/{runs[0]['id']}"] if runs else []
    paths += [f"/projects/{PROJECT}/deployments/{dep_id}"] if dep_id else []
    page, _log = new_page(admin_cookies(), width=390, height=844)
    for path in paths:
        page.goto(server.url + path)
        overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{path} scrolls sideways by {overflow}px on a phone"
    if dep_id:
        expect(page.locator(".verdict-sentence").first).to_be_visible()
        screenshot(page, "13-deployment-phone")
