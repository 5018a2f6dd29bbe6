"""Payload builders: Alertmanager's webhook v4 field by field, chat formats, DingTalk signing, e-mail."""

from __future__ import annotations

import base64
import hashlib
import urllib.parse

import pytest

from juanie.observe.alerts.alertmanager_receiver import AlertmanagerPayloadError, parse_alertmanager_webhook
from juanie.observe.alerts.dispatcher import Notification
from juanie.observe.alerts.model import Alert, fingerprint
from juanie.observe.notify import (
    alertmanager_webhook_payload,
    dingtalk_payload,
    dingtalk_signed_url,
    email_message,
    redact_url,
    slack_payload,
    wecom_payload,
)

T = 1_714_564_800.0  # 2024-05-01T12:00:00Z


def notification() -> Notification:
    common = {"alertname": "HighErrorRate", "env": "prod", "severity": "P1"}
    alerts = (
        Alert(
            {**common, "service": "pay"},
            {"summary": "pay fails", "runbook_url": "http://rb/1"},
            T - 60,
            None,
            "http://juanie/g",
        ),
        Alert({**common, "service": "user"}, {"summary": "user fails", "runbook_url": "http://rb/1"}, T - 120, T - 5),
    )
    return Notification("web", '{}:{alertname="HighErrorRate"}', {"alertname": "HighErrorRate"}, alerts, "firing", T)


def test_alertmanager_v4_payload_field_by_field() -> None:
    payload = alertmanager_webhook_payload(notification(), "http://juanie.local")
    assert set(payload) == {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    assert payload["version"] == "4"
    assert payload["groupKey"] == '{}:{alertname="HighErrorRate"}'
    assert payload["truncatedAlerts"] == 0
    assert payload["status"] == "firing"
    assert payload["receiver"] == "web"
    assert payload["groupLabels"] == {"alertname": "HighErrorRate"}
    assert payload["commonLabels"] == {"alertname": "HighErrorRate", "env": "prod", "severity": "P1"}
    assert payload["commonAnnotations"] == {"runbook_url": "http://rb/1"}
    assert payload["externalURL"] == "http://juanie.local"
    first, second = payload["alerts"]
    assert set(first) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert first["status"] == "firing" and second["status"] == "resolved"
    assert first["startsAt"] == "2024-05-01T11:59:00.000Z"
    assert first["endsAt"] == "0001-01-01T00:00:00Z"
    assert second["endsAt"] == "2024-05-01T11:59:55.000Z"
    assert first["generatorURL"] == "http://juanie/g"
    assert first["fingerprint"] == fingerprint(first["labels"]) and len(first["fingerprint"]) == 16


def test_payload_round_trips_through_the_alertmanager_receiver() -> None:
    payload = alertmanager_webhook_payload(notification(), "http://juanie.local")
    alerts = parse_alertmanager_webhook(payload)
    assert [a.labels["service"] for a in alerts] == ["pay", "user"]
    assert alerts[0].ends_at is None and alerts[0].starts_at == pytest.approx(T - 60)
    assert alerts[1].resolved(T) and alerts[1].ends_at == pytest.approx(T - 5)
    assert all(a.source == "alertmanager" for a in alerts)


def test_receiver_accepts_go_nanosecond_times() -> None:
    (a,) = parse_alertmanager_webhook(
        {
            "version": "4",
            "alerts": [
                {
                    "status": "resolved",
                    "labels": {"alertname": "X"},
                    "startsAt": "2024-05-01T12:00:00.123456789Z",
                    "endsAt": "2024-05-01T12:01:00+02:00",
                }
            ],
        }
    )
    assert a.starts_at == pytest.approx(T + 0.123456) and a.ends_at == pytest.approx(T + 60 - 7200)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "payload: expected a JSON object"),
        ({"version": "3", "alerts": []}, 'payload.version: expected "4"'),
        ({"version": "4"}, "payload.alerts: expected a list"),
        (
            {"version": "4", "alerts": [{"labels": {"a": 1}, "startsAt": "2024-05-01T12:00:00Z"}]},
            "payload.alerts[0].labels.a: expected a string",
        ),
        (
            {"version": "4", "alerts": [{"labels": {"a": "1"}, "status": "weird", "startsAt": "2024-05-01T12:00:00Z"}]},
            "payload.alerts[0].status",
        ),
        (
            {"version": "4", "alerts": [{"labels": {"a": "1"}, "startsAt": "yesterday"}]},
            "payload.alerts[0].startsAt: expected an RFC 3339 time",
        ),
        (
            {
                "version": "4",
                "alerts": [
                    {
                        "labels": {"a": "1"},
                        "status": "resolved",
                        "startsAt": "2024-05-01T12:00:00Z",
                        "endsAt": "0001-01-01T00:00:00Z",
                    }
                ],
            },
            "a resolved alert needs an end time",
        ),
    ],
)
def test_receiver_rejects_malformed_payloads_clearly(payload: object, message: str) -> None:
    with pytest.raises(AlertmanagerPayloadError) as info:
        parse_alertmanager_webhook(payload)
    assert message in str(info.value)


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    """RFC 2104 by hand, so the test does not reuse the code path it checks."""
    block = 64
    key = key.ljust(block, b"\0") if len(key) <= block else hashlib.sha256(key).digest().ljust(block, b"\0")
    inner = hashlib.sha256(bytes(k ^ 0x36 for k in key) + message).digest()
    return hashlib.sha256(bytes(k ^ 0x5C for k in key) + inner).digest()


def test_dingtalk_signature_matches_the_documented_algorithm() -> None:
    secret, ts = "SEC000example+secret/value", 1_714_564_800_123
    expected = urllib.parse.quote(base64.b64encode(_hmac_sha256(secret.encode(), f"{ts}\n{secret}".encode())), safe="")
    url = dingtalk_signed_url("https://oapi.dingtalk.com/robot/send?access_token=abc", secret, ts)
    assert url == f"https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp={ts}&sign={expected}"
    assert "+" not in url.split("sign=")[1] and "/" not in url.split("sign=")[1]


def test_chat_formats_carry_title_and_each_alert() -> None:
    n = notification()
    slack = slack_payload(n, "http://juanie")
    assert slack["text"] == "[FIRING:1] HighErrorRate"
    assert [f["title"] for f in slack["attachments"][0]["fields"]] == ["firing", "resolved"]
    ding = dingtalk_payload(n)
    assert ding["msgtype"] == "markdown" and "pay fails" in ding["markdown"]["text"]
    wecom = wecom_payload(n)
    assert wecom["msgtype"] == "markdown" and "[runbook](http://rb/1)" in wecom["markdown"]["content"]


def test_wecom_content_is_truncated_to_its_limit() -> None:
    big = tuple(Alert({"alertname": "X", "i": str(i)}, {"summary": "x" * 200}, T) for i in range(100))
    n = Notification("r", "k", {}, big, "firing", T)
    assert len(wecom_payload(n)["markdown"]["content"].encode()) <= 4096


def test_email_message_has_subject_recipients_and_both_parts() -> None:
    msg = email_message(notification(), "juanie@example.org", ["a@example.org", "b@example.org"], "http://j")
    assert msg["Subject"] == "[FIRING:1] HighErrorRate"
    assert msg["To"] == "a@example.org, b@example.org"
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "[resolved] user fails" in text and "service=pay" in text
    assert "<b>firing</b> pay fails" in html


def test_redaction_hides_tokens() -> None:
    assert redact_url("https://hooks.slack.com/services/T00/B00/XXXX") == "https://hooks.slack.com/services/***"
    assert redact_url("https://oapi.dingtalk.com/robot/send?access_token=s3cret") == (
        "https://oapi.dingtalk.com/robot/***?access_token=***"
    )
    assert "pw" not in redact_url("http://user:pw@host:8080/hook")
