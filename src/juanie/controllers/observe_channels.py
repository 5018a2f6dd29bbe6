"""Notification channels as people configure them: validation, the shown/sealed split, and building the sender's
``Channel``. Pure apart from the secret box passed in.

A channel's URL is a secret (Slack, DingTalk and WeCom put the token in it), as are DingTalk's signing secret and
the SMTP password: they are sealed into one blob; what an API answer shows is the redacted target only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from juanie.observe.notify.channels import HTTP_KINDS, Channel, EmailChannel, HttpChannel, redact_url
from juanie.store.crypto import SecretBox

KINDS = (*HTTP_KINDS, "email")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9_.]{0,62})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class ChannelError(ValueError):
    """A channel definition that cannot work; ``location`` names the field."""

    def __init__(self, message: str, location: str) -> None:
        super().__init__(message)
        self.location = location


@dataclass(frozen=True)
class ChannelSpec:
    """A validated channel: ``shown`` may be listed; ``hidden`` is sealed."""

    name: str
    kind: str
    shown: dict[str, Any]
    hidden: dict[str, str]
    send_resolved: bool = True


def validate_channel(data: Mapping[str, Any]) -> ChannelSpec:
    """Check a channel body (``name``, ``kind`` and the kind's fields); raises ``ChannelError`` naming the field."""
    name = str(data.get("name") or "")
    if not _NAME.match(name):
        raise ChannelError(f"name: expected lowercase letters, digits, '-', '_' or '.', got {name!r}", "name")
    kind = data.get("kind")
    if kind not in KINDS:
        raise ChannelError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}", "kind")
    send_resolved = bool(data.get("send_resolved", True))
    if kind in HTTP_KINDS:
        url = str(data.get("url") or "")
        if not url.startswith(("http://", "https://")):
            raise ChannelError("url: expected an http:// or https:// URL", "url")
        hidden = {"url": url}
        if data.get("secret"):
            if kind != "dingtalk":
                raise ChannelError("secret: only DingTalk robots take a signing secret", "secret")
            hidden["secret"] = str(data["secret"])
        return ChannelSpec(name, kind, {"target": redact_url(url)}, hidden, send_resolved)
    host = str(data.get("host") or "")
    if not host:
        raise ChannelError("host: an e-mail channel needs the SMTP server's host name", "host")
    port = data.get("port", 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ChannelError(f"port: expected an SMTP port 1-65535, got {port!r}", "port")
    sender = str(data.get("sender") or "")
    if not _EMAIL.match(sender):
        raise ChannelError(f"sender: expected an e-mail address, got {sender!r}", "sender")
    recipients = data.get("recipients") or []
    if not isinstance(recipients, list) or not recipients or not all(_EMAIL.match(str(r)) for r in recipients):
        raise ChannelError("recipients: expected a non-empty list of e-mail addresses", "recipients")
    shown = {
        "target": f"smtp://{host}:{port}",
        "host": host,
        "port": port,
        "sender": sender,
        "recipients": [str(r) for r in recipients],
        "username": str(data.get("username") or ""),
        "starttls": bool(data.get("starttls", False)),
    }
    hidden = {"password": str(data.get("password") or "")}
    return ChannelSpec(name, "email", shown, hidden, send_resolved)


def seal_context(project: str, team: str, name: str) -> str:
    """Binds a sealed blob to its owner and name, so it cannot be copied to another channel's row."""
    return f"juanie.notify:{project}:{team}:{name}"


def seal(box: SecretBox, spec: ChannelSpec, project: str, team: str) -> bytes:
    return box.seal(json.dumps(spec.hidden), seal_context(project, team, spec.name))


def build_channel(
    box: SecretBox,
    *,
    project: str,
    team: str,
    name: str,
    kind: str,
    shown: Mapping[str, Any],
    sealed: bytes,
    external_url: str = "",
) -> Channel:
    """The sender's channel for a stored row (opens the sealed part)."""
    hidden = json.loads(box.open(sealed, seal_context(project, team, name)))
    if kind in HTTP_KINDS:
        return HttpChannel(name, kind, hidden["url"], hidden.get("secret", ""), external_url=external_url)
    return EmailChannel(
        name,
        str(shown["host"]),
        int(shown["port"]),
        str(shown["sender"]),
        tuple(shown["recipients"]),
        username=str(shown.get("username") or ""),
        password=hidden.get("password", ""),
        starttls=bool(shown.get("starttls")),
        external_url=external_url,
    )
