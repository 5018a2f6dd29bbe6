"""Push webhooks from GitHub and GitLab: signature checks, payload parsing and replay protection. Pure.

The API route reads the raw body and headers, calls `signature_problem`, `parse_push` and `verify`, and turns a
refusal into HTTP 401 (api/webhook_guard.py counts and rate-limits refusals). Nothing here does I/O, so every rule
is tested with plain bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Provider = Literal["github", "gitlab"]
_ZERO_SHA = "0" * 40
_GITHUB_SIGNATURE = re.compile(r"sha256=[0-9a-fA-F]{64}")


class WebhookError(Exception):
    """A webhook Juanie cannot use.

    `code` is machine-readable: `malformed`, `unsupported_event`, `unknown_provider`, `no_signature` or
    `malformed_signature`.
    """

    def __init__(self, message: str, code: str = "malformed"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PushCommit:
    sha: str
    message: str
    author: str
    email: str
    timestamp: str


@dataclass(frozen=True)
class PushEvent:
    """One push, whichever forge sent it. `branch` is None for tag pushes (then `tag` is set)."""

    provider: Provider
    repo_url: str
    branch: str | None
    after_sha: str
    before_sha: str
    pusher: str
    delivery_id: str
    commits: list[PushCommit] = field(default_factory=list)
    tag: str | None = None
    repo_urls: tuple[str, ...] = ()

    @property
    def deleted(self) -> bool:
        """The ref was deleted (the forge sends an all-zero `after`)."""
        return self.after_sha == _ZERO_SHA

    @property
    def created(self) -> bool:
        return self.before_sha == _ZERO_SHA


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def signature_problem(headers: Mapping[str, str]) -> WebhookError | None:
    """Why a delivery's signature header cannot be right whatever the secret, or None if it may be.

    Checked before any secret is looked up: no signature at all (`no_signature`), or one that is not the shape the
    forge sends — `X-Hub-Signature-256: sha256=<64 hex digits>`, `X-Gitlab-Token: <printable ASCII>`
    (`malformed_signature`). A header with bytes outside ASCII is malformed, never an error of the server.
    """
    h = _lower(headers)
    github, gitlab = h.get("x-hub-signature-256"), h.get("x-gitlab-token")
    if not github and not gitlab:
        return WebhookError("no signature (X-Hub-Signature-256 or X-Gitlab-Token)", code="no_signature")
    if github and not _GITHUB_SIGNATURE.fullmatch(github.strip()):
        return WebhookError(
            "malformed signature: X-Hub-Signature-256 must be 'sha256=' and 64 hex digits", code="malformed_signature"
        )
    if gitlab and not (gitlab.isascii() and gitlab.isprintable()):
        return WebhookError("malformed signature: X-Gitlab-Token must be printable ASCII", code="malformed_signature")
    return None


def verify_github(secret: str, body: bytes, signature_header: str | None) -> bool:
    """Check `X-Hub-Signature-256: sha256=<hex hmac of the raw body>` in constant time."""
    if not secret or not signature_header or not _GITHUB_SIGNATURE.fullmatch(signature_header.strip()):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature_header.strip()[len("sha256=") :].lower())


def sign_github(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub would send for `body` (for tests and test deliveries)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_gitlab(secret: str, token_header: str | None) -> bool:
    """GitLab sends the shared secret itself in `X-Gitlab-Token`; compare it in constant time."""
    if not secret or token_header is None or not token_header.isascii():
        return False
    return hmac.compare_digest(secret.encode(), token_header.encode())


def detect_provider(headers: Mapping[str, str]) -> Provider:
    h = _lower(headers)
    if "x-github-event" in h:
        return "github"
    if "x-gitlab-event" in h:
        return "gitlab"
    raise WebhookError(
        "cannot tell which forge sent this webhook: expected an X-GitHub-Event or X-Gitlab-Event header",
        code="unknown_provider",
    )


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    """Verify a webhook with whichever scheme its provider uses."""
    h = _lower(headers)
    provider = detect_provider(headers)
    if provider == "github":
        return verify_github(secret, body, h.get("x-hub-signature-256"))
    return verify_gitlab(secret, h.get("x-gitlab-token"))


def _get(data: Mapping[str, Any], path: str, kind: type | tuple[type, ...] = str, required: bool = True) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            if required:
                raise WebhookError(f"push payload: missing field '{path}'")
            return None
        node = node[part]
    if node is None and not required:
        return None
    if not isinstance(node, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(t.__name__ for t in kind)
        raise WebhookError(f"push payload: field '{path}' must be {names}, got {type(node).__name__}")
    return node


def _sha(data: Mapping[str, Any], path: str) -> str:
    value = _get(data, path)
    if len(value) != 40 or any(c not in "0123456789abcdef" for c in value.lower()):
        raise WebhookError(f"push payload: field '{path}' must be a 40-character commit sha, got {value[:60]!r}")
    return value.lower()


def _split_ref(ref: str) -> tuple[str | None, str | None]:
    if ref.startswith("refs/heads/"):
        return ref[len("refs/heads/") :], None
    if ref.startswith("refs/tags/"):
        return None, ref[len("refs/tags/") :]
    raise WebhookError(f"push payload: 'ref' must start with refs/heads/ or refs/tags/, got {ref!r}")


def _commits(items: Any) -> list[PushCommit]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise WebhookError("push payload: 'commits' must be a list")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise WebhookError(f"push payload: commits[{i}] must be an object")
        author = item.get("author") if isinstance(item.get("author"), Mapping) else {}
        out.append(
            PushCommit(
                sha=str(item.get("id", "")),
                message=str(item.get("message", "")),
                author=str(author.get("name", "")),
                email=str(author.get("email", "")),
                timestamp=str(item.get("timestamp", "")),
            )
        )
    return out


def _push_event(
    provider: Provider,
    data: Mapping[str, Any],
    body: bytes,
    branch: str | None,
    tag: str | None,
    urls: tuple[str, ...],
    pusher: str,
    delivery_id: str | None,
) -> PushEvent:
    """The fields GitHub and GitLab payloads name alike, around what each forge's parser found in its own places.

    Without a delivery id (GitLab's token is static, so nothing else tells two deliveries apart) the body's hash
    stands in: a byte-identical body is then the replay signal.
    """
    return PushEvent(
        provider=provider,
        repo_url=urls[0],
        repo_urls=urls,
        branch=branch,
        tag=tag,
        after_sha=_sha(data, "after"),
        before_sha=_sha(data, "before"),
        pusher=pusher,
        delivery_id=delivery_id or "sha256:" + hashlib.sha256(body).hexdigest(),
        commits=_commits(data.get("commits")),
    )


def _parse_github(h: dict[str, str], data: Mapping[str, Any], body: bytes) -> PushEvent:
    event = h.get("x-github-event", "")
    if event != "push":
        raise WebhookError(f"GitHub event {event!r} is not handled (only 'push')", code="unsupported_event")
    branch, tag = _split_ref(_get(data, "ref"))
    urls = tuple(
        u for u in (_get(data, f"repository.{k}", required=False) for k in ("clone_url", "html_url", "ssh_url")) if u
    )
    if not urls:
        raise WebhookError("push payload: missing field 'repository.clone_url'")
    pusher = _get(data, "pusher.name", required=False) or _get(data, "sender.login", required=False) or ""
    return _push_event("github", data, body, branch, tag, urls, pusher, h.get("x-github-delivery"))


def _parse_gitlab(h: dict[str, str], data: Mapping[str, Any], body: bytes) -> PushEvent:
    event = h.get("x-gitlab-event", "")
    kind = data.get("object_kind")
    if event not in ("Push Hook", "Tag Push Hook") or kind not in ("push", "tag_push"):
        raise WebhookError(f"GitLab event {event!r} is not handled (only 'Push Hook')", code="unsupported_event")
    branch, tag = _split_ref(_get(data, "ref"))
    urls = tuple(
        u for u in (_get(data, f"project.{k}", required=False) for k in ("git_http_url", "web_url", "git_ssh_url")) if u
    ) or tuple(u for u in (_get(data, "repository.git_http_url", required=False),) if u)
    if not urls:
        raise WebhookError("push payload: missing field 'project.git_http_url'")
    pusher = _get(data, "user_username", required=False) or _get(data, "user_name", required=False) or ""
    delivery = h.get("x-gitlab-event-uuid") or h.get("x-gitlab-webhook-uuid")
    return _push_event("gitlab", data, body, branch, tag, urls, pusher, delivery)


def parse_push(headers: Mapping[str, str], body: bytes) -> PushEvent:
    """Parse a GitHub or GitLab push payload into a `PushEvent`; anything unusable raises `WebhookError`."""
    h = _lower(headers)
    provider = detect_provider(h)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookError(f"push payload is not valid JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise WebhookError(f"push payload must be a JSON object, got {type(data).__name__}")
    if provider == "github":
        return _parse_github(h, data, body)
    return _parse_gitlab(h, data, body)


class ReplayGuard:
    """Remembers delivery ids for `window` seconds and refuses a second delivery of the same id.

    Time is passed in (`now`), so the guard is deterministic and testable; the API passes `time.time()`.
    Memory is bounded by `max_entries` (the oldest ids are forgotten first).
    """

    def __init__(self, window: float = 600.0, max_entries: int = 10_000):
        if window <= 0 or max_entries <= 0:
            raise ValueError("ReplayGuard: window and max_entries must be positive")
        self.window = window
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest_id, seen_at = next(iter(self._seen.items()))
            if now - seen_at < self.window and len(self._seen) <= self.max_entries:
                break
            del self._seen[oldest_id]

    def seen(self, delivery_id: str, now: float) -> bool:
        self._expire(now)
        return delivery_id in self._seen

    def admit(self, delivery_id: str, now: float) -> bool:
        """True (and remember it) for a fresh delivery id; False for a replay inside the window."""
        if not delivery_id:
            return False
        self._expire(now)
        if delivery_id in self._seen:
            return False
        self._seen[delivery_id] = now
        self._expire(now)
        return True

    def __len__(self) -> int:
        return len(self._seen)
