"""The Observe pages in-process against a real SQLite store and the real metric store: what each role is shown,
empty states on a server without an engine, bad query parameters, and channels without their secrets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from juanie.api.app import create_app
from juanie.controllers import observe_records as records
from juanie.controllers.observe_channels import validate_channel
from juanie.domain.rbac import Role
from juanie.settings import Settings
from juanie.store import accounts
from juanie.store import projects as project_store

PASSWORD = "password-123"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'juanie.db'}", run_controllers=False)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as test_client:
        _setup(test_client)
        yield test_client


def _setup(client: TestClient) -> None:
    """shop: owned by ann, dev (developer) and vic (viewer); eve is in no project."""
    with client.app.state.juanie.db.session() as s:  # type: ignore[attr-defined]
        users = {n: accounts.create_user(s, n, password=PASSWORD) for n in ("ann", "dev", "vic", "eve")}
        project = project_store.create_project(s, name="shop", actor=users["ann"])
        for name, role in (("dev", Role.developer), ("vic", Role.viewer)):
            accounts.set_membership(s, project, role=role, user=users[name], actor="ann")


def _as(client: TestClient, name: str) -> TestClient:
    client.cookies.clear()
    response = client.post("/api/auth/login", auth=(name, PASSWORD), json={"session": True})
    assert response.status_code == 200, response.text
    return client


def test_silences_page_shows_the_form_and_expire_only_to_developers(client: TestClient) -> None:
    db = client.app.state.juanie.db  # type: ignore[attr-defined]
    _as(client, "dev")
    made = client.post(
        "/api/silences",
        json={"project": "shop", "matchers": 'service="cart"', "duration": "1h", "comment": "deploy window"},
        headers={"X-CSRF-Token": client.cookies.get("juanie_csrf") or ""},
    )
    assert made.status_code == 201, made.text
    page = client.get("/projects/shop/silences?matchers=alertname%3D%22X%22")
    assert page.status_code == 200
    assert "data-silence-form" in page.text and 'value="alertname=&#34;X&#34;"' in page.text
    assert "Expire</button>" in page.text and "deploy window" in page.text
    viewer = _as(client, "vic").get("/projects/shop/silences")
    assert "deploy window" in viewer.text
    assert "data-silence-form" not in viewer.text and "Expire</button>" not in viewer.text
    assert "needs the developer role" in viewer.text
    assert records.list_silences(db, ["shop"], time.time(), False)[0]["comment"] == "deploy window"
    assert _as(client, "eve").get("/projects/shop/silences").status_code == 404


def test_metrics_and_logs_without_an_engine_explain_what_to_do(client: TestClient) -> None:
    _as(client, "vic")
    metrics = client.get("/projects/shop/metrics?env=staging")
    assert metrics.status_code == 200
    assert "No measurements for staging yet." in metrics.text
    assert 'aria-current="true">1h<' in metrics.text and 'data-has-data="0"' in metrics.text
    odd = client.get("/projects/shop/metrics?range=5y&env=nope")
    assert odd.status_code == 200
    assert "has no environment nope" in odd.text
    logs = client.get("/projects/shop/logs?level=loud&range=forever")
    assert logs.status_code == 200
    assert "No process logs on this server." in logs.text and "Unknown level loud" in logs.text
    assert "data-follow" not in logs.text
    assert _as(client, "eve").get("/projects/shop/metrics").status_code == 404


def test_alerts_pages_list_nothing_firing_and_the_nav_links_the_observe_section(client: TestClient) -> None:
    _as(client, "vic")
    page = client.get("/projects/shop/alerts?state=bogus&severity=P9")
    assert page.status_code == 200
    assert "Nothing is firing." in page.text
    assert 'href="/alerts" aria-current="page"' in page.text
    assert client.get("/alerts").status_code == 200
    assert 'href="/projects/shop/metrics"' in client.get("/projects/shop").text


def test_notification_channels_show_no_secret_and_offer_a_test_only_to_maintainers(client: TestClient) -> None:
    state = client.app.state.juanie  # type: ignore[attr-defined]
    spec = validate_channel({"name": "oncall", "kind": "slack", "url": "https://hooks.example.com/T0/B0/s3cr3t-xyz"})
    records.put_channel(state.db, state.box, "shop", "", spec, "ann")
    owner = _as(client, "ann").get("/settings/notifications")
    assert 'data-channel="shop/oncall"' in owner.text
    assert 'data-channel-test="/api/projects/shop/channels/oncall/test"' in owner.text
    assert "s3cr3t-xyz" not in owner.text
    viewer = _as(client, "vic").get("/settings/notifications")
    assert 'data-channel="shop/oncall"' in viewer.text and "data-channel-test" not in viewer.text
    outsider = _as(client, "eve").get("/settings/notifications")
    assert "shop/oncall" not in outsider.text and "No notification channels yet" in outsider.text
