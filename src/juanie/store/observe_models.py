"""The observe tables: alert history, silences, notification channels and per-project observe settings.

Alerts are kept as *episodes*: one row from the moment a label set starts matching (pending) until it resolves,
so the list shows what fired, when, and for how long, and a restart can resume without re-notifying.
Channel secrets (webhook URLs carry tokens; SMTP passwords) are sealed with the server's secret box and never
leave the server in clear text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from juanie.store.models import Base, BigId, utcnow


class AlertEpisode(Base):
    """One alert instance from pending (or firing) to resolved; ``state`` is pending | firing | resolved."""

    __tablename__ = "alert_episodes"
    __table_args__ = (Index("ix_alert_episodes_project_state", "project", "state"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(128), index=True)
    fingerprint: Mapped[str] = mapped_column(String(16), index=True)
    alertname: Mapped[str] = mapped_column(String(128))
    severity: Mapped[str] = mapped_column(String(8), default="")
    env: Mapped[str] = mapped_column(String(128), default="")
    service: Mapped[str] = mapped_column(String(128), default="")
    state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16), default="juanie")
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    annotations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    active_at: Mapped[datetime] = mapped_column(default=utcnow)
    fired_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SilenceRecord(Base):
    """Alertmanager's silence: matchers, a time window, who and why. ``project`` scopes who may see and end it."""

    __tablename__ = "silences"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project: Mapped[str] = mapped_column(String(128), index=True, default="")
    matchers: Mapped[list[str]] = mapped_column(JSON, default=list)
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(128))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expired_by: Mapped[str] = mapped_column(String(128), default="")


class ChannelRecord(Base):
    """A notification channel of a project (``team`` empty) or of a team (``project`` empty).

    ``config`` holds what may be shown (kind-specific: SMTP host, sender, recipients); ``sealed`` holds the
    secret part (URL, signing secret, SMTP password) encrypted with the server's key.
    """

    __tablename__ = "notification_channels"
    __table_args__ = (UniqueConstraint("project", "team", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(128), default="", index=True)
    team: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    send_resolved: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ObserveSettingsRecord(Base):
    """Per-project observe settings: a Prometheus URL sends the project's queries and rules there; log rules
    (alert on matching log lines) are evaluated over the captured logs."""

    __tablename__ = "observe_settings"

    project: Mapped[str] = mapped_column(String(128), primary_key=True)
    prometheus_url: Mapped[str] = mapped_column(String(512), default="")
    log_rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
