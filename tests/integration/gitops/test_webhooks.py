"""Webhook signatures, push payload parsing and replay protection (pure: bytes in, values out)."""

from __future__ import annotations

import json

import pytest

from juanie.gitops.message import CommitMessage, parse_commit, parse_trailers
from juanie.gitops.webhooks import (
    ReplayGuard,
    WebhookError,
    parse_push,
    sign_github,
    verify,
    verify_github,
    verify_gitlab,
)

AFTER, BEFORE = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", "0" * 40

GITHUB_PUSH = {
    "ref": "refs/heads/main",
    "before": BEFORE,
    "after": AFTER,
    "repository": {
        "clone_url": "https://github.com/acme/shop.git",
        "html_url": "https://github.com/acme/shop",
        "ssh_url": "git@github.com:acme/shop.git",
    },
    "pusher": {"name": "alice", "email": "alice@example.com"},
    "commits": [
        {
            "id": AFTER,
            "message": "fix checkout",
            "timestamp": "2024-05-01T10:00:00Z",
            "author": {"name": "Alice", "email": "alice@example.com"},
        }
    ],
}
GITLAB_PUSH = {
    "object_kind": "push",
    "ref": "refs/heads/release/1.4",
    "before": "f" * 40,
    "after": AFTER,
    "user_username": "bob",
    "project": {
        "git_http_url": "https://gitlab.example.com/acme/shop.git",
        "web_url": "https://gitlab.example.com/acme/shop",
    },
    "commits": [
        {
            "id": AFTER,
            "message": "release",
            "timestamp": "2024-05-01T10:00:00+00:00",
            "author": {"name": "Bob", "email": "bob@example.com"},
        }
    ],
}


def gh_headers(body: bytes, secret: str = "s3cret", delivery: str = "d-1") -> dict[str, str]:
    return {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sign_github(secret, body)}


def test_github_signature_verifies_only_the_exact_body_and_secret() -> None:
    body = json.dumps(GITHUB_PUSH).encode()
    sig = sign_github("s3cret", body)
    assert verify_github("s3cret", body, sig)
    assert not verify_github("other", body, sig)
    assert not verify_github("s3cret", body + b" ", sig)
    assert not verify_github("s3cret", body, sig.replace("sha256=", "sha1="))
    assert not verify_github("s3cret", body, None)
    assert not verify_github("", body, sig)
    assert verify(gh_headers(body), body, "s3cret")
    assert not verify(gh_headers(body, secret="wrong"), body, "s3cret")


def test_gitlab_token() -> None:
    assert verify_gitlab("tok", "tok")
    assert not verify_gitlab("tok", "tok2") and not verify_gitlab("tok", None) and not verify_gitlab("", "")
    assert verify({"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "tok"}, b"{}", "tok")


def test_parse_github_push() -> None:
    body = json.dumps(GITHUB_PUSH).encode()
    event = parse_push(gh_headers(body), body)
    assert (event.provider, event.branch, event.after_sha, event.pusher, event.delivery_id) == (
        "github",
        "main",
        AFTER,
        "alice",
        "d-1",
    )
    assert event.repo_url == "https://github.com/acme/shop.git" and "git@github.com:acme/shop.git" in event.repo_urls
    assert event.created and not event.deleted
    assert [(c.sha, c.author, c.message) for c in event.commits] == [(AFTER, "Alice", "fix checkout")]


def test_parse_gitlab_push_and_tag() -> None:
    body = json.dumps(GITLAB_PUSH).encode()
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "t", "X-Gitlab-Event-UUID": "u-1"}
    event = parse_push(headers, body)
    assert (event.provider, event.branch, event.pusher, event.delivery_id) == ("gitlab", "release/1.4", "bob", "u-1")
    assert event.repo_url == "https://gitlab.example.com/acme/shop.git"
    tag = parse_push(
        {"X-Gitlab-Event": "Tag Push Hook"},
        json.dumps({**GITLAB_PUSH, "object_kind": "tag_push", "ref": "refs/tags/v1.4.0"}).encode(),
    )
    assert tag.branch is None and tag.tag == "v1.4.0"
    assert tag.delivery_id.startswith("sha256:")  # no delivery header: the body hash identifies it


@pytest.mark.parametrize(
    ("headers", "body", "code", "message"),
    [
        ({"X-GitHub-Event": "push"}, b"not json", "malformed", "not valid JSON"),
        ({"X-GitHub-Event": "push"}, b"[1]", "malformed", "must be a JSON object"),
        (
            {"X-GitHub-Event": "push"},
            json.dumps({**GITHUB_PUSH, "after": "xyz"}).encode(),
            "malformed",
            "'after' must be a 40-character commit sha",
        ),
        (
            {"X-GitHub-Event": "push"},
            json.dumps({k: v for k, v in GITHUB_PUSH.items() if k != "ref"}).encode(),
            "malformed",
            "missing field 'ref'",
        ),
        (
            {"X-GitHub-Event": "push"},
            json.dumps({**GITHUB_PUSH, "ref": "main"}).encode(),
            "malformed",
            "must start with refs/heads/",
        ),
        (
            {"X-GitHub-Event": "push"},
            json.dumps({**GITHUB_PUSH, "repository": {}}).encode(),
            "malformed",
            "repository.clone_url",
        ),
        ({"X-GitHub-Event": "issues"}, b"{}", "unsupported_event", "'issues' is not handled"),
        ({"X-Gitlab-Event": "Merge Request Hook"}, b"{}", "unsupported_event", "only 'Push Hook'"),
        ({}, b"{}", "unknown_provider", "X-GitHub-Event or X-Gitlab-Event"),
    ],
)
def test_malformed_payloads_are_explained(headers: dict[str, str], body: bytes, code: str, message: str) -> None:
    with pytest.raises(WebhookError, match=message) as err:
        parse_push(headers, body)
    assert err.value.code == code


def test_replay_guard_refuses_repeats_within_the_window() -> None:
    guard = ReplayGuard(window=60, max_entries=3)
    assert guard.admit("a", now=1000)
    assert not guard.admit("a", now=1030)  # replay
    assert guard.admit("a", now=1061)  # outside the window: a new delivery with a reused id
    assert not guard.admit("", now=1000)
    for i in range(5):
        assert guard.admit(f"id{i}", now=1100 + i)
    assert len(guard) == 3  # bounded memory
    assert guard.seen("id4", now=1105) and not guard.seen("id0", now=1105)


def test_commit_message_round_trip() -> None:
    m = CommitMessage(
        project="shop",
        environment="prod",
        release="1a2b3c4d5e6f",
        actor="alice",
        reason="canary passed:\nerror rate ok",
        deployment="17",
        strategy="canary",
        body="Details here.",
    )
    text = m.render()
    assert text.splitlines()[0] == "deploy shop/prod: release 1a2b3c4 (canary)"
    assert parse_trailers(text) == {
        "Juanie-Release": "1a2b3c4d5e6f",
        "Juanie-Environment": "prod",
        "Juanie-Actor": "alice",
        "Juanie-Reason": "canary passed: error rate ok",
        "Juanie-Deployment": "17",
    }
    commit = parse_commit("f" * 40, (), "Juanie", "j@l", 1.0, text)
    assert (commit.body, commit.reason, commit.deployment) == ("Details here.", "canary passed: error rate ok", "17")
    assert parse_trailers("just a subject") == {}
    assert parse_trailers("subject\n\nnot: a\nplain line") == {}
