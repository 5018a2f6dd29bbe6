"""The notifier edge: send one notification to one channel, retrying with backoff, and record the delivery.

Transient failures (timeouts, connection errors, HTTP 5xx and 429, SMTP 4xx) are retried with exponential backoff;
permanent ones (other HTTP 4xx, a robot's non-zero ``errcode``, SMTP 5xx) stop at once, because sending the same
bad request again cannot succeed.

Channel URLs and SMTP hosts are users', so every connection goes through ``juanie.egress`` (a refused target is a
permanent failure), and an error never repeats what the remote answered: only its status code.
"""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from juanie.egress import EgressPolicy, EgressRefused, endpoint_url, guarded_async_client
from juanie.observe.alerts.dispatcher import Notification
from juanie.observe.notify.channels import Channel, EmailChannel, HttpChannel, scrub
from juanie.observe.notify.chat import (
    dingtalk_payload,
    dingtalk_signed_url,
    email_message,
    slack_payload,
    wecom_payload,
)
from juanie.observe.notify.webhook import alertmanager_webhook_payload


@dataclass(frozen=True)
class DeliveryRecord:
    """What happened to one notification on one channel; ``target`` is redacted."""

    channel: str
    kind: str
    target: str
    receiver: str
    group_key: str
    status: str
    attempts: int
    ok: bool
    status_code: int | None
    error: str | None
    duration: float
    at: float


class _Attempt(Exception):
    def __init__(self, message: str, retryable: bool, status_code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code


def build_body(channel: HttpChannel, notification: Notification) -> dict[str, Any]:
    if channel.kind == "webhook":
        return alertmanager_webhook_payload(notification, channel.external_url)
    if channel.kind == "slack":
        return slack_payload(notification, channel.external_url)
    if channel.kind == "dingtalk":
        return dingtalk_payload(notification)
    return wecom_payload(notification)


class Notifier:
    """``await notifier.send(channel, notification) -> DeliveryRecord``; never raises for delivery failures."""

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        egress: EgressPolicy | None = None,
    ) -> None:
        """Connections follow ``egress`` (default: ``JUANIE_ALLOWED_PRIVATE_URLS``); a ``client`` is used as is."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.egress = egress if egress is not None else EgressPolicy.from_env()
        self._client = client or guarded_async_client(self.egress)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._clock = clock

    async def aclose(self) -> None:
        await self._client.aclose()

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based): base, 2×base, 4×base … capped at ``backoff_max``."""
        return min(self.backoff_base * 2 ** (attempt - 1), self.backoff_max)

    async def send(self, channel: Channel, notification: Notification) -> DeliveryRecord:
        started = time.monotonic()
        attempts, status_code, error = 0, None, None
        ok = False
        while attempts < self.max_attempts:
            attempts += 1
            try:
                status_code = await self._attempt(channel, notification)
                ok, error = True, None
                break
            except _Attempt as exc:
                status_code, error = exc.status_code, str(exc)
                if not exc.retryable or attempts >= self.max_attempts:
                    break
            await self._sleep(self.backoff(attempts))
        secrets = (channel.url, channel.secret) if isinstance(channel, HttpChannel) else (channel.password,)
        return DeliveryRecord(
            channel=channel.name,
            kind=channel.kind,
            target=channel.target,
            receiver=notification.receiver,
            group_key=notification.group_key,
            status=notification.status,
            attempts=attempts,
            ok=ok,
            status_code=status_code,
            error=scrub(error, *secrets) if error else None,
            duration=time.monotonic() - started,
            at=self._clock(),
        )

    async def _attempt(self, channel: Channel, notification: Notification) -> int | None:
        if isinstance(channel, EmailChannel):
            await asyncio.to_thread(_send_email, channel, notification, self.egress)
            return None
        return await self._post(channel, notification)

    async def _post(self, channel: HttpChannel, notification: Notification) -> int:
        url = channel.url
        if channel.kind == "dingtalk" and channel.secret:
            url = dingtalk_signed_url(url, channel.secret, int(self._clock() * 1000))
        try:
            response = await self._client.post(url, json=build_body(channel, notification), timeout=channel.timeout)
        except EgressRefused as exc:
            raise _Attempt(f"{channel.target}: {exc}", False) from None
        except httpx.TimeoutException:
            raise _Attempt(f"timed out after {channel.timeout}s posting to {channel.target}", True) from None
        except httpx.TransportError as exc:
            raise _Attempt(f"cannot connect to {channel.target}: {type(exc).__name__}", True) from None
        code = response.status_code
        if code >= 500 or code == 429:
            raise _Attempt(f"{channel.target} answered HTTP {code}", True, code)
        if code >= 400:
            raise _Attempt(f"{channel.target} answered HTTP {code}", False, code)
        if channel.kind in ("dingtalk", "wecom"):
            _check_robot_answer(response, channel)
        return code


def _check_robot_answer(response: httpx.Response, channel: HttpChannel) -> None:
    """DingTalk and WeCom answer 200 with ``{"errcode": n}``; anything but 0 is a refusal."""
    try:
        body = response.json()
    except ValueError:
        return
    errcode = body.get("errcode", 0) if isinstance(body, dict) else 0
    if errcode not in (0, "0"):
        code = errcode if isinstance(errcode, int) and not isinstance(errcode, bool) else "(not a number)"
        raise _Attempt(f"{channel.target} refused the message: errcode {code}", False, response.status_code)


class _SMTP(smtplib.SMTP):
    """``smtplib.SMTP`` whose socket goes to an address ``egress`` allows (``_get_socket`` is smtplib's seam)."""

    def __init__(self, egress: EgressPolicy, host: str, port: int, timeout: float) -> None:
        self._egress = egress
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> Any:
        if self._egress.listed(endpoint_url("smtp", host, port)):
            return super()._get_socket(host, port, timeout)
        return self._egress.connect(host, port, timeout, self.source_address)


def _send_email(channel: EmailChannel, notification: Notification, egress: EgressPolicy) -> None:
    message = email_message(notification, channel.sender, list(channel.recipients), channel.external_url)
    try:
        with _SMTP(egress, channel.host, channel.port, channel.timeout) as smtp:
            if channel.starttls:
                smtp.starttls()
            if channel.username:
                smtp.login(channel.username, channel.password)
            smtp.send_message(message)
    except EgressRefused as exc:
        raise _Attempt(f"{channel.target}: {exc}", False) from None
    except smtplib.SMTPRecipientsRefused:
        raise _Attempt(f"{channel.target} refused every recipient", False) from None
    except smtplib.SMTPResponseException as exc:
        transient = 400 <= exc.smtp_code < 500
        raise _Attempt(f"{channel.target} answered SMTP {exc.smtp_code}", transient, exc.smtp_code) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise _Attempt(f"cannot deliver via {channel.target}: {type(exc).__name__}", True) from None
