"""Chat formats (Slack-compatible, DingTalk and WeCom robots) and the e-mail message (pure builders).

All share one text rendering so a notification reads the same everywhere: a title line with status, count and
group, then one line per alert with its summary and runbook link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from email.message import EmailMessage
from html import escape
from typing import Any

from juanie.observe.alerts.dispatcher import Notification
from juanie.observe.notify.webhook import common

_COLORS = {"firing": "#d63232", "resolved": "#2eb886"}
_DINGTALK_MAX = 18_000  # DingTalk rejects bodies over 20,000 bytes
_WECOM_MAX = 4_000  # WeCom markdown content is limited to 4,096 bytes


def title(notification: Notification) -> str:
    """``[FIRING:2] HighErrorRate env=shop-dev service=payment``."""
    labels = common([a.labels for a in notification.alerts])
    name = labels.pop("alertname", "alerts")
    group = " ".join(f"{k}={v}" for k, v in sorted(notification.group_labels.items()) if k != "alertname")
    count = len(notification.firing) if notification.status == "firing" else len(notification.alerts)
    return f"[{notification.status.upper()}:{count}] {name} {group}".strip()


def _lines(notification: Notification) -> list[tuple[str, str, str]]:
    out = []
    for alert in notification.alerts:
        status = notification.alert_status(alert)
        summary = alert.annotations.get("summary") or alert.annotations.get("description") or alert.name
        out.append((status, summary, alert.annotations.get("runbook_url", "")))
    return out


def _markdown(notification: Notification, limit: int) -> str:
    parts = [f"### {title(notification)}"]
    for status, summary, runbook in _lines(notification):
        line = f"- **{status}** {summary}"
        if runbook:
            line += f" ([runbook]({runbook}))"
        parts.append(line)
    text = "\n".join(parts)
    if len(text.encode()) > limit:
        text = text.encode()[: limit - 20].decode(errors="ignore") + "\n… (truncated)"
    return text


def slack_payload(notification: Notification, external_url: str = "") -> dict[str, Any]:
    """An incoming-webhook body that Slack, Mattermost and Rocket.Chat all accept."""
    fields = [
        {"title": status, "value": summary + (f" <{runbook}|runbook>" if runbook else ""), "short": False}
        for status, summary, runbook in _lines(notification)
    ]
    return {
        "text": title(notification),
        "attachments": [
            {
                "color": _COLORS.get(notification.status, "#888888"),
                "title": title(notification),
                "title_link": external_url or None,
                "fields": fields,
                "footer": "Juanie",
                "ts": int(notification.at),
            }
        ],
    }


def dingtalk_payload(notification: Notification) -> dict[str, Any]:
    return {
        "msgtype": "markdown",
        "markdown": {"title": title(notification), "text": _markdown(notification, _DINGTALK_MAX)},
    }


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """DingTalk's signed-robot URL: ``sign = urlencode(base64(HMAC-SHA256(secret, f"{ts}\\n{secret}")))``."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest))
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}timestamp={timestamp_ms}&sign={sign}"


def wecom_payload(notification: Notification) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": _markdown(notification, _WECOM_MAX)}}


def email_message(
    notification: Notification, sender: str, recipients: list[str], external_url: str = ""
) -> EmailMessage:
    """A multipart (text + HTML) message; the subject is the notification's title."""
    if not recipients:
        raise ValueError("an e-mail notification needs at least one recipient")
    message = EmailMessage()
    message["Subject"] = title(notification)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    lines = [title(notification), ""]
    rows = []
    for alert, (status, summary, runbook) in zip(notification.alerts, _lines(notification), strict=True):
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
        lines.append(f"* [{status}] {summary}\n  labels: {labels}" + (f"\n  runbook: {runbook}" if runbook else ""))
        link = f' <a href="{escape(runbook)}">runbook</a>' if runbook else ""
        rows.append(f"<li><b>{escape(status)}</b> {escape(summary)}{link}<br><small>{escape(labels)}</small></li>")
    if external_url:
        lines += ["", f"Juanie: {external_url}"]
    message.set_content("\n".join(lines))
    message.add_alternative(
        f"<html><body><h3>{escape(title(notification))}</h3><ul>{''.join(rows)}</ul></body></html>",
        subtype="html",
    )
    return message
