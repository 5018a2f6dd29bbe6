"""Where notifications go: HTTP channels (webhook, Slack, DingTalk, WeCom) and e-mail, plus redaction.

Webhook URLs often carry their token in the path or query (Slack, DingTalk, WeCom), so they are secrets: records
and errors only ever show ``redact_url(url)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HTTP_KINDS = ("webhook", "slack", "dingtalk", "wecom")


@dataclass(frozen=True)
class HttpChannel:
    """``kind`` picks the body format; ``secret`` enables DingTalk's signed mode."""

    name: str
    kind: str
    url: str
    secret: str = field(default="", repr=False)
    timeout: float = 10.0
    external_url: str = ""

    def __post_init__(self) -> None:
        if self.kind not in HTTP_KINDS:
            raise ValueError(f"channel {self.name}: kind must be one of {', '.join(HTTP_KINDS)}, got {self.kind!r}")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"channel {self.name}: URL must start with http:// or https://")

    @property
    def target(self) -> str:
        return redact_url(self.url)

    def __repr__(self) -> str:
        return f"HttpChannel(name={self.name!r}, kind={self.kind!r}, url={self.target!r})"


@dataclass(frozen=True)
class EmailChannel:
    name: str
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    username: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = False
    timeout: float = 10.0
    external_url: str = ""
    kind: str = "email"

    def __post_init__(self) -> None:
        if not self.recipients:
            raise ValueError(f"channel {self.name}: an e-mail channel needs at least one recipient")
        if not 0 < self.port < 65536:
            raise ValueError(f"channel {self.name}: SMTP port must be 1-65535, got {self.port}")

    @property
    def target(self) -> str:
        return f"smtp://{self.host}:{self.port}"


Channel = HttpChannel | EmailChannel


def redact_url(url: str) -> str:
    """Keep scheme, host and the first path segment; mask the rest of the path and every query value."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    segments = [s for s in parts.path.split("/") if s]
    path = "/" + segments[0] + ("/***" if len(segments) > 1 else "") if segments else ""
    query = urlencode([(k, "***") for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, host, path, query, ""))


def scrub(text: str, *secrets: str) -> str:
    """Remove every secret (and URL-looking text containing one) from an error message."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return re.sub(r"(access_token|key|token|sign)=[^&\s'\"]+", r"\1=***", text)
