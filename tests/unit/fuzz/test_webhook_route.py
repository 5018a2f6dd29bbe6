"""Fuzzing the push webhook through the real route: whatever arrives, the answer is a 202 or a clear 4xx.

The loader of `juanie.yaml` is already fuzzed in tests/unit/spec/test_fuzz.py; this covers the other door that
takes untrusted input without a token. The app is the real one (routing, middleware, SQLite store) served
in-process; controllers are off so that accepted pushes only queue runs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from juanie.api.app import create_app
from juanie.settings import load_settings

ALLOWED = {202, 400, 401, 413, 422}
KEYS = ["ref", "before", "after", "repository", "clone_url", "html_url", "url", "pusher", "name", "commits", "id",
        "message", "author", "email", "timestamp", "project", "git_http_url", "checkout_sha", "user_username",
        "deleted", "created", "head_commit"]  # fmt: skip
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
    st.sampled_from(["refs/heads/main", "refs/tags/v1", "refs/heads/", "0" * 40, "a" * 40, "/tmp/repo", ""]),
)  # fmt: skip
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), children, max_size=6),
    ),
    max_leaves=25,
)
bodies = st.one_of(
    documents.map(lambda doc: json.dumps(doc).encode()),
    st.binary(max_size=200),
    st.fixed_dictionaries({"ref": st.sampled_from(["refs/heads/main", "refs/heads/feature/x", "refs/tags/v1"]),
                           "after": st.text("0123456789abcdef", min_size=0, max_size=41),
                           "repository": st.fixed_dictionaries({"clone_url": st.sampled_from(["/srv/shop", "x"])}),
                           "commits": st.lists(documents, max_size=3)}).map(lambda d: json.dumps(d).encode()),
)  # fmt: skip
events = st.sampled_from(
    [{"X-GitHub-Event": "push"}, {"X-GitHub-Event": "ping"}, {"X-Gitlab-Event": "Push Hook"},
     {"X-Gitlab-Event": "Tag Push Hook"}, {}]
) | st.dictionaries(st.sampled_from(["X-GitHub-Event", "X-Gitlab-Event", "X-GitHub-Delivery", "Content-Type"]),
                    header_text, max_size=3)  # fmt: skip
signing = st.sampled_from(["github", "gitlab", "wrong", "garbage", "none"])

SECRET_NAME = "juanie.webhook-secret"


@pytest.fixture(scope="module")
def hook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    data: Path = tmp_path_factory.mktemp("hooks") / "data"
    app_settings = replace(
        load_settings(data_dir=data, database_url=f"sqlite:///{data / 'j.db'}"), run_controllers=False,
        local_repo_roots=(Path("/srv"),),  # the project's repository, matched by the pushes' clone_url, is local
        webhook_reject_burst=1_000_000,  # refusals are not rate-limited here: every example reaches the checks
    )
    with TestClient(create_app(app_settings), raise_server_exceptions=False) as client:
        token = app_settings.admin_token_file.read_text().strip()
        admin = {"Authorization": f"Bearer {token}"}
        assert client.post("/api/projects", json={"name": "shop", "repo_url": "/srv/shop"}, headers=admin).is_success
        secret = client.post("/api/projects/shop/webhook", headers=admin).json()["secret"]
        yield client, secret


def _sign(how: str, secret: str, body: bytes) -> dict[str, str]:
    if how == "github":
        return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
    if how == "gitlab":
        return {"X-Gitlab-Token": secret}
    if how == "wrong":
        return {"X-Hub-Signature-256": "sha256=" + hmac.new(b"wrong", body, hashlib.sha256).hexdigest()}
    if how == "garbage":
        return {"X-Hub-Signature-256": "md5=zz", "X-Gitlab-Token": "\t"}
    return {}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, event=events, how=signing, delivery=header_text, by_project=st.booleans())
def test_any_webhook_gets_a_202_or_a_clear_4xx(hook, body, event, how, delivery, by_project):
    client, secret = hook
    headers = {**event, "X-GitHub-Delivery": delivery, **_sign(how, secret, body)}
    url = "/api/hooks/git" + ("?project=shop" if by_project else "")
    response = client.post(url, content=body, headers=headers)
    assert response.status_code in ALLOWED, (response.status_code, response.text)
    payload = response.json()
    if response.status_code >= 400:
        error = payload["error"]
        assert error["code"] and error["message"] and "\n" not in error["message"]
        assert "Traceback" not in error["message"]
    else:
        assert payload["status"] in ("queued", "duplicate", "ignored")
    assert secret not in response.text


def test_an_oversized_webhook_is_413(hook):
    client, secret = hook
    body = b"{" + b" " * (25 * 1024 * 1024 + 1) + b"}"  # over the webhook cap (api.body_limit)
    response = client.post(
        "/api/hooks/git?project=shop", content=body, headers={"X-GitHub-Event": "push", **_sign("github", secret, body)}
    )
    assert response.status_code == 413 and "25 MiB" in response.json()["error"]["message"]
