"""The API on both backends: authentication on every route, RBAC, errors as 4xx JSON, secrets write-only."""

from __future__ import annotations

import re

import pytest

from tests.support import wait_until

PUBLIC = {"/healthz", "/readyz"}
SAMPLE_PATH_VALUES = {
    "project": "shop",
    "env": "prod",
    "name": "API_KEY",
    "token_id": "1",
    "username": "admin",
    "team": "core",
    "kind": "user",
}


def _routes(api):
    spec = api.client.get("/api/openapi.json").json()
    for path, methods in spec["paths"].items():
        for method in methods:
            yield method.upper(), path


def _fill(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PATH_VALUES.get(m.group(1), "x"), path)


def test_openapi_is_served_and_lists_the_api(api):
    spec = api.client.get("/api/openapi.json").json()
    assert "/api/projects" in spec["paths"] and "/api/events" in spec["paths"]


def test_every_route_but_health_needs_a_token(api):
    api.admin("POST", "/api/projects", json={"name": "shop"})
    checked = 0
    for method, path in _routes(api):
        if path in PUBLIC:
            continue
        for headers in ({}, {"Authorization": "Bearer jn_not-a-real-token"}, {"Authorization": "Basic eDp5"}):
            if headers.get("Authorization", "").startswith("Basic") and path == "/api/auth/login":
                continue  # Basic is how one logs in; wrong credentials are a 401 from the route itself
            response = api.client.request(method, _fill(path), headers=headers, json={})
            assert response.status_code == 401, f"{method} {path} with {headers}: {response.status_code}"
            assert response.json()["error"]["code"] == "unauthorized"
        checked += 1
    assert checked >= 25
    assert api.client.get("/api/openapi.json").status_code == 200
    for path in PUBLIC:
        assert api.client.get(path).status_code == 200
    assert api.client.get("/metrics").status_code == 401


def test_a_viewer_gets_403_on_every_mutating_route_of_the_project(api):
    assert api.admin("POST", "/api/projects", json={"name": "shop"}).status_code == 201
    assert api.admin("POST", "/api/teams", json={"name": "core"}).status_code == 201
    viewer = api.user_token("vera", role="viewer", project="shop")
    mutating = [
        (m, p)
        for m, p in _routes(api)
        if m in ("POST", "PUT", "PATCH", "DELETE") and p.startswith("/api/projects/{project}")
    ]
    assert len(mutating) >= 10
    for method, path in mutating:
        response = api.client.request(method, _fill(path), headers=api.as_(viewer), json={"bogus": True})
        assert response.status_code == 403, f"{method} {path}: {response.status_code} {response.text}"
    # ...while reading works
    assert api.client.get("/api/projects/shop", headers=api.as_(viewer)).status_code == 200
    assert api.client.get("/api/projects/shop/environments", headers=api.as_(viewer)).status_code == 200


def test_non_members_cannot_see_or_touch_a_project(api):
    api.admin("POST", "/api/projects", json={"name": "shop"})
    outsider = api.user_token("olga")
    assert api.client.get("/api/projects/shop", headers=api.as_(outsider)).status_code == 404
    assert api.client.get("/api/projects", headers=api.as_(outsider)).json()["items"] == []
    events = api.client.get("/api/events", params={"project": "shop"}, headers=api.as_(outsider)).json()
    assert events["items"] == []
    assert api.client.post("/api/users", headers=api.as_(outsider), json={"username": "x"}).status_code == 403


def test_create_project_defaults_and_controller_makes_environments_active(api):
    created = api.admin("POST", "/api/projects", json={"name": "shop", "team": "payments"})
    assert created.status_code == 201, created.text
    envs = {e["name"]: e for e in created.json()["environments"]}
    assert {n: (e["replicas"], e["approval"]) for n, e in envs.items()} == {
        "dev": (1, "none"),
        "staging": (2, "optional"),
        "prod": (3, "required"),
    }

    def all_active():
        body = api.admin("GET", "/api/projects/shop").json()
        return body["status"] == "active" and all(e["status"] == "active" for e in body["environments"])

    wait_until(all_active, timeout=20, message="environments to become active")
    kinds = [
        e["kind"]
        for e in api.admin("GET", "/api/events", params={"project": "shop", "limit": 50}).json()["items"]
    ]
    assert kinds.count("environment.transitioned") == 3 and "project.transitioned" in kinds


def test_illegal_transition_is_409_with_the_reason(api):
    api.admin("POST", "/api/projects", json={"name": "shop"})
    response = api.admin("POST", "/api/projects/shop/resume", json={"reason": "x"})
    assert response.status_code == 409
    assert "not suspended" in response.json()["error"]["message"]
    response = api.admin("POST", "/api/projects/shop/archive", json={"reason": "x"})
    if api.admin("GET", "/api/projects/shop").json()["status"] == "initializing":
        assert response.status_code == 409 and "is not allowed" in response.json()["error"]["message"]


def test_archived_project_is_read_only(api):
    api.admin("POST", "/api/projects", json={"name": "shop"})
    wait_until(lambda: api.admin("GET", "/api/projects/shop").json()["status"] == "active", timeout=20)
    assert api.admin("POST", "/api/projects/shop/archive", json={"reason": "done"}).status_code == 200
    response = api.admin("PATCH", "/api/projects/shop", json={"description": "new"})
    assert response.status_code == 409 and "archived" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "where"),
    [
        ("POST", "/api/projects", {"name": "Bad Name"}, 422, "name"),
        ("POST", "/api/projects", {"name": "ok", "extra": 1}, 422, "extra"),
        (
            "POST",
            "/api/projects",
            {"name": "ok", "environments": [{"name": "dev", "replicas": "three"}]},
            422,
            "environments.0.replicas",
        ),
        ("POST", "/api/projects", [1, 2], 422, None),
        ("GET", "/api/events?limit=100000", None, 422, "limit"),
        ("GET", "/api/projects/nope", None, 404, "project"),
        ("PATCH", "/api/projects/shop/environments/prod", {"size": "XL"}, 422, "size"),
        ("DELETE", "/api/tokens/999999", None, 404, "token_id"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_reason(api, method, path, body, status, where):
    api.admin("POST", "/api/projects", json={"name": "shop"})
    response = api.admin(method, path, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["code"]
    if where:
        assert error.get("location", "").startswith(where), error


def test_malformed_json_is_a_422_not_a_500(api):
    response = api.client.post(
        "/api/projects",
        content=b"{not json",
        headers={**api.as_(api.admin_token), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["error"]["message"]


def test_secrets_are_write_only(api):
    api.admin("POST", "/api/projects", json={"name": "shop"})
    planted = "planted-secret-Zq8vX3"
    assert (
        api.admin(
            "PUT", "/api/projects/shop/secrets/API_KEY", json={"value": planted}, params={"env": "prod"}
        ).status_code
        == 200
    )
    assert (
        api.admin("PUT", "/api/projects/shop/secrets/DB_PASSWORD", json={"value": planted}).status_code == 200
    )
    listing = api.admin("GET", "/api/projects/shop/secrets", params={"env": "prod"})
    assert {(i["name"], i["scope"]) for i in listing.json()["items"]} == {
        ("API_KEY", "prod"),
        ("DB_PASSWORD", "project"),
    }
    everything = [
        listing.text,
        api.admin("GET", "/api/events", params={"limit": 500}).text,
        api.admin("GET", "/api/projects/shop").text,
    ]
    assert all(planted not in text for text in everything)
    log_text = api.client.app.state.juanie.settings.data_dir
    assert planted not in str(log_text)


def test_login_issues_a_token_and_failed_logins_are_rate_limited(api):
    api.admin("POST", "/api/users", json={"username": "bob", "password": "hunter2-long"})
    ok = api.client.post("/api/auth/login", auth=("bob", "hunter2-long"), json={"token_name": "cli"})
    assert ok.status_code == 200
    token = ok.json()["token"]
    assert api.client.get("/api/me", headers=api.as_(token)).json()["username"] == "bob"
    codes = [api.client.post("/api/auth/login", auth=("bob", "wrong-password")).status_code for _ in range(7)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    limited = api.client.post("/api/auth/login", auth=("bob", "hunter2-long"))
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    failures = api.admin("GET", "/api/events", params={"kind": "auth.login_failed", "limit": 50}).json()
    assert failures["items"] == [] or all("wrong" not in str(e) for e in failures["items"])


def test_tokens_are_shown_once_and_can_be_revoked(api):
    created = api.admin("POST", "/api/tokens", json={"name": "ci"}).json()
    token = created["token"]
    assert api.client.get("/api/me", headers=api.as_(token)).status_code == 200
    listed = api.admin("GET", "/api/tokens").text
    assert token not in listed and created["prefix"] in listed
    assert api.admin("DELETE", f"/api/tokens/{created['id']}").status_code == 200
    assert api.client.get("/api/me", headers=api.as_(token)).status_code == 401


def test_session_cookie_needs_csrf_for_changes(api):
    api.admin("POST", "/api/users", json={"username": "carol", "password": "long-password"})
    login = api.client.post("/api/auth/login", auth=("carol", "long-password"), json={"session": True})
    assert login.status_code == 200
    csrf = api.client.cookies.get("juanie_csrf")
    assert api.client.get("/api/me").json()["via"] == "session"
    assert api.client.post("/api/projects", json={"name": "cookieproj"}).status_code == 403
    response = api.client.post("/api/projects", json={"name": "cookieproj"}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 201
    api.client.cookies.clear()


def test_restricted_prod_needs_an_explicit_grant(api):
    api.admin("POST", "/api/projects", json={"name": "shop"})
    api.admin("PATCH", "/api/projects/shop/environments/prod", json={"deploy_restricted": True})
    maint = api.user_token("mia", role="maintainer", project="shop")
    response = api.client.patch(
        "/api/projects/shop/environments/prod", headers=api.as_(maint), json={"replicas": 4}
    )
    assert response.status_code == 403
    assert (
        api.client.patch(
            "/api/projects/shop/environments/dev", headers=api.as_(maint), json={"replicas": 2}
        ).status_code
        == 200
    )
    api.admin(
        "PUT", "/api/projects/shop/environments/prod/grants", json={"user": "mia", "permission": "admin"}
    )
    assert (
        api.client.patch(
            "/api/projects/shop/environments/prod", headers=api.as_(maint), json={"replicas": 4}
        ).status_code
        == 200
    )


def test_metrics_expose_requests_and_controller_state(api):
    api.admin("GET", "/api/projects")
    wait_until(lambda: "juanie_leader{server=" in api.admin("GET", "/metrics").text, timeout=10)
    text = api.admin("GET", "/metrics").text
    assert 'juanie_http_requests_total{code="200",method="GET",route="/api/projects"}' in text
    assert "juanie_http_request_duration_seconds_bucket" in text
    assert "juanie_db_pool_connections" in text
    assert "juanie_controller_queue_depth" in text


def test_events_filter_and_cursor(api):
    for i in range(3):
        api.admin("POST", "/api/projects", json={"name": f"p{i}"})
    page = api.admin("GET", "/api/events", params={"kind": "project.*", "limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = api.admin(
        "GET", "/api/events", params={"kind": "project.*", "limit": 50, "cursor": page["next_cursor"]}
    ).json()
    names = [e["project"] for e in page["items"] + rest["items"] if e["kind"] == "project.created"]
    assert sorted(names) == ["p0", "p1", "p2"]
