"""Attacks on the unauthenticated push webhook (`POST /api/hooks/git`), against a real server on both backends.

- signature headers the server cannot compare (bytes outside ASCII, the wrong shape): a 401 with a reason, never a
  500;
- a flood of forged deliveries: rate-limited per (project, address), counted in a metric, and summarised on the
  project's timeline instead of one event per delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest

from tests.security.auth_attack_support import Target, client_from, counter, serve

METRIC = "juanie_webhook_rejected_total"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    yield from serve(request, tmp_path_factory)


def _project_with_hook(target: Target, name: str) -> str:
    target.server.ok("POST", "/api/projects", json={"name": name})
    return target.server.ok("POST", f"/api/projects/{name}/webhook")["secret"]


def _push(ref: str = "refs/heads/main") -> bytes:
    return json.dumps({"ref": ref, "before": "1" * 40, "after": "2" * 40,
                       "repository": {"clone_url": "https://example.com/acme/shop.git"},
                       "pusher": {"name": "mallory"}, "commits": []}).encode()  # fmt: skip


def _sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _deliver(target: Target, project: str, body: bytes, headers: dict[str, str | bytes], address: str):  # type: ignore[no-untyped-def]
    with client_from(address) as client:
        return client.post(f"{target.server.url}/api/hooks/git?project={project}", content=body,
                           headers={"X-GitHub-Event": "push", "Content-Type": "application/json", **headers})


def test_non_ascii_and_malformed_signatures_are_401_with_a_reason(target: Target) -> None:
    secret = _project_with_hook(target, "oddsig")
    body = _push()
    bad_headers: list[dict[str, str | bytes]] = [
        {"X-Hub-Signature-256": ("sha256=" + "é" * 64).encode()},  # UTF-8 bytes, read by the server as Latin-1
        {"X-Hub-Signature-256": b"sha256=" + bytes(range(0x80, 0xC0))},
        {"X-Hub-Signature-256": "sha256=zz"},
        {"X-Hub-Signature-256": "md5=" + "0" * 64},
        {"X-Hub-Signature-256": _sign(secret, body)[:-1] + "g"},
        {"X-Gitlab-Token": ("ñ" + secret).encode()},
    ]
    for i, headers in enumerate(bad_headers):
        response = _deliver(target, "oddsig", body, headers, f"127.0.3.{i + 1}")
        assert response.status_code == 401, (headers, response.status_code, response.text)
        error = response.json()["error"]
        assert error["details"]["reason"] == "malformed_signature" and "malformed signature" in error["message"]
    metrics = target.server.api("GET", "/metrics").text
    assert counter(metrics, METRIC, reason="malformed_signature") >= len(bad_headers)
    assert target.server.api("GET", "/readyz").status_code == 200


def test_a_flood_of_forged_deliveries_is_rate_limited_counted_and_summarised(target: Target) -> None:
    server = target.server
    secret = _project_with_hook(target, "flooded")
    before = server.api("GET", "/metrics").text
    body = _push()
    forged = {"X-Hub-Signature-256": _sign("not-the-secret", body)}
    flood = 30
    responses = [_deliver(target, "flooded", body, forged, "127.0.4.1") for _ in range(flood)]
    codes = [r.status_code for r in responses]
    assert set(codes) == {401, 429} and codes.count(429) >= flood // 2, codes
    assert codes[:5] == [401] * 5 and codes[-1] == 429
    assert all(int(r.headers["Retry-After"]) >= 1 for r in responses if r.status_code == 429)

    after = server.api("GET", "/metrics").text
    counted = {reason: counter(after, METRIC, reason=reason) - counter(before, METRIC, reason=reason)
               for reason in ("bad_signature", "rate_limited")}  # fmt: skip
    assert counted == {"bad_signature": codes.count(401), "rate_limited": codes.count(429)}

    timeline = server.ok("GET", "/api/events", params={"project": "flooded", "kind": "webhook.rejected"})["items"]
    assert 1 <= len(timeline) <= 2, timeline  # a summary a minute, not one event per delivery
    assert timeline[-1]["data"]["rejected"] >= 1 and "does not match" in timeline[-1]["data"]["reason"]

    # The limit is per (project, address): the project's real forge, elsewhere, still gets through.
    tag = _push("refs/tags/v1")
    genuine = _deliver(target, "flooded", tag, {"X-Hub-Signature-256": _sign(secret, tag)}, "127.0.4.2")
    assert genuine.status_code == 202 and genuine.json()["status"] == "ignored", genuine.text
