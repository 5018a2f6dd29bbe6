"""Pages in-process against a real SQLite store: session checks, RBAC-aware rendering, fixed query counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from juanie.api.app import create_app
from juanie.settings import Settings
from juanie.store import accounts
from juanie.store import projects as project_store
from juanie.web.session import safe_next


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'juanie.db'}", run_controllers=False)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as test_client:
        yield test_client


def _db(client: TestClient):  # type: ignore[no-untyped-def]
    return client.app.state.juanie.db  # type: ignore[attr-defined]


def _user(client: TestClient, name: str, *, admin: bool = False) -> None:
    with _db(client).session() as s:
        accounts.create_user(s, name, password="password-123", is_admin=admin)


def _sign_in(client: TestClient, name: str) -> None:
    client.cookies.clear()
    response = client.post("/api/auth/login", auth=(name, "password-123"), json={"session": True})
    assert response.status_code == 200, response.text


def _projects(client: TestClient, owner: str, count: int, prefix: str = "p") -> None:
    with _db(client).session() as s:
        user = accounts.get_user(s, owner)
        for i in range(count):
            project_store.create_project(s, name=f"{prefix}{i:04d}", actor=user)


def test_pages_without_a_session_redirect_to_login_and_come_back(client: TestClient) -> None:
    response = client.get("/projects/x?tab=1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/projects/x%3Ftab%3D1"
    assert client.get("/login").status_code == 200


def test_an_api_token_in_the_session_cookie_is_not_a_session(client: TestClient) -> None:
    _user(client, "ann")
    with _db(client).session() as s:
        _token, plaintext = accounts.issue_token(s, accounts.get_user(s, "ann"), "cli")
    client.cookies.set("juanie_session", plaintext)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_pasted_api_token_is_exchanged_for_session_cookies(client: TestClient) -> None:
    _user(client, "ann")
    with _db(client).session() as s:
        _token, plaintext = accounts.issue_token(s, accounts.get_user(s, "ann"), "cli")
    response = client.post("/api/ui/session", headers={"Authorization": f"Bearer {plaintext}"})
    assert response.status_code == 200
    assert response.cookies["juanie_session"] != plaintext
    assert client.get("/").status_code == 200
    # A session cannot mint another session (only a real API token can).
    again = client.post("/api/ui/session", headers={"X-CSRF-Token": client.cookies["juanie_csrf"]})
    assert again.status_code == 403 and "API token" in again.json()["error"]["message"]
    bad = TestClient(client.app).post("/api/ui/session", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


def test_home_lists_only_visible_projects_and_pages_through_many(client: TestClient) -> None:
    _user(client, "ann")
    _user(client, "bob")
    _projects(client, "ann", 3, prefix="ann")
    _projects(client, "bob", 60, prefix="bob")
    _sign_in(client, "ann")
    html = client.get("/").text
    assert "ann0002" in html and "bob0001" not in html
    _sign_in(client, "bob")
    first, second = client.get("/").text, client.get("/?page=2").text
    assert "bob0000" in first and "bob0059" not in first
    assert "bob0059" in second and "Page 2 of 2" in second
    assert "bob0042" in client.get("/?q=0042").text and "bob0041" not in client.get("/?q=0042").text


def test_home_and_project_pages_cost_a_fixed_number_of_queries(client: TestClient) -> None:
    _user(client, "root", admin=True)
    _sign_in(client, "root")
    statements: list[str] = []
    engine = _db(client).engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        counts = []
        for batch in (2, 30):
            _projects(client, "root", batch, prefix=f"b{batch}-")
            client.get("/")  # warm up: the session's coarse last-used write happens at most once a minute
            statements.clear()
            assert client.get("/").status_code == 200
            counts.append(len(statements))
        assert counts[0] == counts[1], f"home page queries grew with projects: {counts}"
        statements.clear()
        assert client.get("/projects/b30-0001").status_code == 200
        assert len(statements) < 40
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def test_project_page_hides_what_the_role_may_not_do_and_404s_for_outsiders(client: TestClient) -> None:
    _user(client, "own")
    _user(client, "view")
    _user(client, "out")
    _projects(client, "own", 1, prefix="shop")
    with _db(client).session() as s:
        project = project_store.get_project(s, "shop0000")
        accounts.set_membership(s, project, role=accounts.Role.viewer, user=accounts.get_user(s, "view"), actor="own")
    _sign_in(client, "own")
    owner_html = client.get("/projects/shop0000").text
    assert owner_html.count("Edit settings") == 3 and "shop0000-prod" in owner_html
    _sign_in(client, "view")
    viewer_html = client.get("/projects/shop0000").text
    assert "Edit settings" not in viewer_html and "shop0000-prod" in viewer_html
    _sign_in(client, "out")
    missing = client.get("/projects/shop0000")
    assert missing.status_code == 404 and "Project not found" in missing.text


def test_pages_forbid_foreign_resources_and_admin_pages_need_an_admin(client: TestClient) -> None:
    _user(client, "ann")
    _sign_in(client, "ann")
    response = client.get("/settings/tokens")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert "http://" not in response.text.replace("http://www.w3.org/2000/svg", "")
    assert client.get("/settings/users").status_code == 403


def test_language_switch_sets_a_cookie_and_never_redirects_off_site(client: TestClient) -> None:
    response = client.get("/lang?to=zh-CN&next=//evil.example/x", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert response.cookies["juanie_lang"] == "zh_CN"
    unknown = client.get("/lang?to=xx")
    assert unknown.status_code == 400 and "expected en or zh_CN" in unknown.json()["error"]["message"]
    assert client.get("/login", cookies={"juanie_lang": "zh_CN"}).text.count("登录") >= 2


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/events?x=1", "/events?x=1"),
        ("//evil", "/"),
        ("https://evil", "/"),
        ("/\\evil", "/"),
        (None, "/"),
        ("/a\nb", "/"),
    ],
)
def test_safe_next_only_allows_local_paths(raw: str | None, expected: str) -> None:
    assert safe_next(raw) == expected


def test_events_page_filters_by_kind_family(client: TestClient) -> None:
    _user(client, "root", admin=True)
    _projects(client, "root", 1, prefix="ev")
    _sign_in(client, "root")
    html = client.get("/events?kind=environment.*").text
    assert html.count('class="event-kind kind-environment"') == 3
    assert "project.created</span>" not in html
    assert client.get("/events?cursor=-1").status_code == 422
