"""Notifiers: payload builders (Alertmanager webhook v4, Slack, DingTalk, WeCom, e-mail) and the sending edge."""

from juanie.observe.notify.channels import Channel, EmailChannel, HttpChannel, redact_url
from juanie.observe.notify.chat import (
    dingtalk_payload,
    dingtalk_signed_url,
    email_message,
    slack_payload,
    wecom_payload,
)
from juanie.observe.notify.notifier import DeliveryRecord, Notifier
from juanie.observe.notify.webhook import alertmanager_webhook_payload

__all__ = [
    "Channel",
    "DeliveryRecord",
    "EmailChannel",
    "HttpChannel",
    "Notifier",
    "alertmanager_webhook_payload",
    "dingtalk_payload",
    "dingtalk_signed_url",
    "email_message",
    "redact_url",
    "slack_payload",
    "wecom_payload",
]
