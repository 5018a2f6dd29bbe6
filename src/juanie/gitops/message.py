"""Structured GitOps commit messages: render and parse. Pure.

Every commit Juanie makes to a GitOps repository is readable by people (`git log` shows
`deploy shop/prod: release 1a2b3c4 (canary)`) and by Juanie (git trailers carry release, environment, actor,
reason and deployment id), so the history of an environment can be rebuilt from git alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TRAILERS: dict[str, str] = {
    "release": "Juanie-Release",
    "environment": "Juanie-Environment",
    "actor": "Juanie-Actor",
    "reason": "Juanie-Reason",
    "deployment": "Juanie-Deployment",
}
_TRAILER_LINE = re.compile(r"^(?P<key>[A-Za-z0-9-]+):\s?(?P<value>.*)$")


def _one_line(text: str) -> str:
    """Trailer values and subjects must stay on one line; collapse any whitespace run into one space."""
    return " ".join(text.split())


@dataclass(frozen=True)
class CommitMessage:
    """What a GitOps commit says. `action` is the verb of the subject (deploy, rollback, promote...)."""

    project: str
    environment: str
    release: str
    actor: str
    reason: str = ""
    deployment: str = ""
    action: str = "deploy"
    strategy: str = ""
    body: str = ""
    subject_override: str = ""

    @property
    def subject(self) -> str:
        if self.subject_override:
            return _one_line(self.subject_override)
        short = self.release[:7] if re.fullmatch(r"[0-9a-f]{8,40}", self.release) else self.release
        tail = f" ({self.strategy})" if self.strategy else ""
        return _one_line(f"{self.action} {self.project}/{self.environment}: release {short}{tail}")

    def trailers(self) -> dict[str, str]:
        values = {
            "release": self.release,
            "environment": self.environment,
            "actor": self.actor,
            "reason": self.reason,
            "deployment": self.deployment,
        }
        return {TRAILERS[k]: _one_line(v) for k, v in values.items() if v}

    def render(self) -> str:
        """Subject, blank line, optional body, blank line, trailers (what git's trailer parser reads)."""
        parts = [self.subject]
        if self.body.strip():
            parts.append(self.body.strip())
        parts.append("\n".join(f"{k}: {v}" for k, v in self.trailers().items()))
        return "\n\n".join(parts) + "\n"


@dataclass(frozen=True)
class GitOpsCommit:
    """One commit of a GitOps repository as Juanie reads it back."""

    sha: str
    parents: tuple[str, ...]
    subject: str
    body: str
    author: str
    email: str
    timestamp: float
    release: str = ""
    environment: str = ""
    actor: str = ""
    reason: str = ""
    deployment: str = ""
    trailers: dict[str, str] = field(default_factory=dict)


def parse_trailers(message: str) -> dict[str, str]:
    """The `Key: value` lines of the last paragraph of a commit message (git's trailer block)."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    if len(paragraphs) < 2:
        return {}
    found: dict[str, str] = {}
    for line in paragraphs[-1].splitlines():
        m = _TRAILER_LINE.match(line.strip())
        if not m:
            return {}  # not a trailer block
        found[m.group("key")] = m.group("value").strip()
    return found


def parse_commit(
    sha: str, parents: tuple[str, ...], author: str, email: str, timestamp: float, message: str
) -> GitOpsCommit:
    """Build a `GitOpsCommit` from raw git fields, lifting Juanie's trailers into attributes."""
    message = message.strip()
    subject, _, rest = message.partition("\n")
    trailers = parse_trailers(message)
    body = rest.strip()
    if trailers:
        body = body.rpartition("\n\n")[0].strip() if "\n\n" in body else ""
    by_key = {attr: trailers.get(name, "") for attr, name in TRAILERS.items()}
    return GitOpsCommit(
        sha=sha,
        parents=parents,
        subject=subject.strip(),
        body=body,
        author=author,
        email=email,
        timestamp=timestamp,
        trailers=trailers,
        **by_key,
    )
