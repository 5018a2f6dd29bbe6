"""What observe remembers in the database: alert episodes, silences, channels, settings — each change an event.

Plain functions over a ``Database`` (blocking; callers run them in a thread), so the API and the alerting loop
share one implementation.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select

from juanie.controllers.observe_channels import ChannelSpec, build_channel, seal
from juanie.controllers.observe_rules import PROJECT_RECEIVER
from juanie.domain.errors import NotFound
from juanie.observe.alerts.model import Alert
from juanie.observe.alerts.rules import Transition
from juanie.observe.alerts.silences import Silence
from juanie.observe.matchers import parse_matcher
from juanie.observe.notify.channels import Channel
from juanie.observe.notify.notifier import DeliveryRecord
from juanie.store.crypto import SecretBox
from juanie.store.db import Database
from juanie.store.events import record
from juanie.store.models import Environment, Project
from juanie.store.observe_models import AlertEpisode, ChannelRecord, ObserveSettingsRecord, SilenceRecord

OPEN_STATES = ("pending", "firing")


def ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# -- environments and projects -----------------------------------------------------------------------------
def known_namespaces(db: Database) -> dict[str, tuple[str, str]]:
    """namespace -> (project, env) for every environment that is not deleted."""
    with db.session() as s:
        rows = s.execute(
            select(Environment.namespace, Project.name, Environment.name)
            .join(Project, Project.id == Environment.project_id)
            .where(Environment.status != "deleted")
        )
        return {ns: (p, e) for ns, p, e in rows}


def alerting_projects(db: Database) -> list[tuple[str, str]]:
    """(name, team) of the projects whose alerts are evaluated: not archived, not failed."""
    with db.session() as s:
        rows = s.execute(select(Project.name, Project.team).where(Project.status.in_(("active", "initializing"))))
        return [(n, t or "") for n, t in rows]


def observe_settings(db: Database, project: str) -> dict[str, Any]:
    """``prometheus_url`` ("" = the embedded store) and ``log_rules`` (rule entries with ``log:``)."""
    with db.session() as s:
        found = s.get(ObserveSettingsRecord, project)
        if found is None:
            return {"project": project, "prometheus_url": "", "log_rules": []}
        return {"project": project, "prometheus_url": found.prometheus_url, "log_rules": list(found.log_rules or [])}


def set_observe_settings(db: Database, project: str, changes: Mapping[str, Any], actor: str) -> dict[str, Any]:
    with db.session() as s:
        found = s.get(ObserveSettingsRecord, project)
        if found is None:
            found = ObserveSettingsRecord(project=project, prometheus_url="", log_rules=[])
            s.add(found)
        if "prometheus_url" in changes:
            found.prometheus_url = changes["prometheus_url"]
        if "log_rules" in changes:
            found.log_rules = list(changes["log_rules"])
        record(s, actor=actor, kind="observe.settings_changed", subject=f"project/{project}", project=project,
               data={"prometheus_url": found.prometheus_url,
                     "log_rules": [r.get("alert") for r in found.log_rules or []]})  # fmt: skip
        return {"project": project, "prometheus_url": found.prometheus_url, "log_rules": list(found.log_rules)}


# -- alert episodes ----------------------------------------------------------------------------------------
def _open_episode(s: Any, project: str, fingerprint: str) -> AlertEpisode | None:
    return s.scalar(
        select(AlertEpisode)
        .where(AlertEpisode.project == project, AlertEpisode.fingerprint == fingerprint)
        .where(AlertEpisode.state.in_(OPEN_STATES))
        .order_by(AlertEpisode.id.desc())
        .limit(1)
    )


def _new_episode(project: str, labels: Mapping[str, str], state: str, source: str, at: float) -> AlertEpisode:
    from juanie.observe.alerts.model import fingerprint

    return AlertEpisode(
        project=project,
        fingerprint=fingerprint(labels),
        alertname=labels.get("alertname", ""),
        severity=labels.get("severity", ""),
        env=labels.get("env", ""),
        service=labels.get("service", ""),
        state=state,
        source=source,
        labels=dict(labels),
        annotations={},
        active_at=ts(at),
    )


def apply_transitions(
    db: Database, project: str, transitions: Sequence[Transition], annotations: Mapping[str, Mapping[str, str]]
) -> None:
    """Write each transition of Juanie's own rules to its episode, and an ``alert.<state>`` event."""
    if not transitions:
        return
    from juanie.observe.alerts.model import fingerprint

    with db.session() as s:
        for t in transitions:
            fp = fingerprint(t.labels)
            episode = _open_episode(s, project, fp)
            if episode is None and t.current in OPEN_STATES:
                episode = _new_episode(project, t.labels, t.current, "juanie", t.at)
                s.add(episode)
            if episode is not None:
                episode.state = "resolved" if t.current == "inactive" else t.current
                episode.value = t.value
                episode.annotations = dict(annotations.get(fp, episode.annotations or {}))
                if t.current == "firing":
                    episode.fired_at = ts(t.at)
                if t.current in ("resolved", "inactive"):
                    episode.resolved_at = ts(t.at)
            kind = "alert.cleared" if t.current == "inactive" else f"alert.{t.current}"
            record(s, actor="controller:observe", kind=kind, subject=f"alert/{t.rule}", project=project,
                   environment=t.labels.get("env"),
                   data={"labels": dict(t.labels), "from": t.previous, "to": t.current, "value": t.value,
                         "fingerprint": fp})  # fmt: skip


def receive_external(db: Database, project: str, alerts: Iterable[Alert], now: float, actor: str) -> int:
    """Alerts from an Alertmanager join the same list: open or update an episode; resolved ones close it."""
    count = 0
    with db.session() as s:
        for alert in alerts:
            count += 1
            episode = _open_episode(s, project, alert.fingerprint)
            resolved = alert.resolved(now)
            record(s, actor=actor, kind="alert.received", subject=f"alert/{alert.name}", project=project,
                   environment=alert.labels.get("env"),
                   data={"labels": dict(alert.labels), "status": "resolved" if resolved else "firing",
                         "source": alert.source, "fingerprint": alert.fingerprint})  # fmt: skip
            if episode is None:
                if resolved:
                    continue
                episode = _new_episode(project, alert.labels, "firing", alert.source, alert.starts_at)
                episode.fired_at = ts(alert.starts_at)
                s.add(episode)
                kind = "alert.firing"
            elif resolved:
                kind = "alert.resolved"
            else:
                episode.annotations = dict(alert.annotations)
                continue
            episode.annotations = dict(alert.annotations)
            if resolved:
                episode.state, episode.resolved_at = "resolved", ts(alert.ends_at)
            record(s, actor=actor, kind=kind, subject=f"alert/{alert.name}", project=project,
                   environment=alert.labels.get("env"),
                   data={"labels": dict(alert.labels), "source": alert.source,
                         "fingerprint": alert.fingerprint})  # fmt: skip
    return count


def episode_dict(e: AlertEpisode) -> dict[str, Any]:
    return {
        "id": e.id,
        "project": e.project,
        "fingerprint": e.fingerprint,
        "alertname": e.alertname,
        "severity": e.severity,
        "env": e.env,
        "service": e.service,
        "state": e.state,
        "source": e.source,
        "labels": e.labels,
        "annotations": e.annotations,
        "value": e.value,
        "active_at": iso(e.active_at),
        "fired_at": iso(e.fired_at),
        "resolved_at": iso(e.resolved_at),
    }


def list_episodes(
    db: Database, projects: Sequence[str] | None, states: Sequence[str], filters: Mapping[str, str], limit: int
) -> list[dict[str, Any]]:
    with db.session() as s:
        stmt = select(AlertEpisode)
        if projects is not None:
            stmt = stmt.where(AlertEpisode.project.in_(list(projects)))
        if states:
            stmt = stmt.where(AlertEpisode.state.in_(list(states)))
        for column in ("alertname", "severity", "service", "source"):
            if filters.get(column):
                stmt = stmt.where(getattr(AlertEpisode, column) == filters[column])
        if filters.get("env"):
            env = filters["env"]
            stmt = stmt.where(or_(AlertEpisode.env == env, AlertEpisode.env.endswith(f"-{env}", autoescape=True)))
        rows = s.scalars(stmt.order_by(AlertEpisode.id.desc()).limit(limit))
        return [episode_dict(e) for e in rows]


# -- silences ----------------------------------------------------------------------------------------------
def silence_dict(r: SilenceRecord, now: float) -> dict[str, Any]:
    starts, ends = r.starts_at.timestamp(), r.ends_at.timestamp()
    # Times go through the database at microsecond precision: a silence starting "now" must read as active.
    state = "pending" if now + 0.001 < starts else ("active" if now + 0.001 < ends else "expired")
    return {"id": r.id, "project": r.project, "matchers": list(r.matchers), "starts_at": iso(r.starts_at),
            "ends_at": iso(r.ends_at), "created_by": r.created_by, "comment": r.comment, "status": state,
            "created_at": iso(r.created_at), "expired_by": r.expired_by or None}  # fmt: skip


def to_silence(r: SilenceRecord) -> Silence:
    return Silence(
        r.id,
        tuple(parse_matcher(m) for m in r.matchers),
        r.starts_at.timestamp(),
        r.ends_at.timestamp(),
        r.created_by,
        r.comment,
    )


def create_silence(db: Database, project: str, silence: Silence, now: float) -> dict[str, Any]:
    with db.session() as s:
        row = SilenceRecord(
            id=silence.id,
            project=project,
            matchers=[str(m) for m in silence.matchers],
            starts_at=ts(silence.starts_at),
            ends_at=ts(silence.ends_at),
            created_by=silence.created_by,
            comment=silence.comment,
        )
        s.add(row)
        record(s, actor=silence.created_by, kind="silence.created", subject=f"silence/{silence.id}", project=project,
               data={"matchers": row.matchers, "starts_at": iso(row.starts_at), "ends_at": iso(row.ends_at),
                     "comment": silence.comment})  # fmt: skip
        s.flush()
        return silence_dict(row, now)


def new_silence_id() -> str:
    return str(uuid.uuid4())


def get_silence(db: Database, silence_id: str) -> SilenceRecord:
    with db.session() as s:
        found = s.get(SilenceRecord, silence_id)
        if found is None:
            raise NotFound(f"silence {silence_id!r} not found", location="id")
        return found


def expire_silence(db: Database, silence_id: str, actor: str, now: float) -> dict[str, Any]:
    """End a silence now (Alertmanager's expire); an expired silence stays in the list as history."""
    with db.session() as s:
        row = s.get(SilenceRecord, silence_id)
        if row is None:
            raise NotFound(f"silence {silence_id!r} not found", location="id")
        if row.ends_at.timestamp() > now:
            row.ends_at = ts(max(now, row.starts_at.timestamp()))
            row.expired_by = actor
            record(s, actor=actor, kind="silence.expired", subject=f"silence/{row.id}", project=row.project,
                   data={"matchers": list(row.matchers)})  # fmt: skip
        return silence_dict(row, now)


def list_silences(db: Database, projects: Sequence[str] | None, now: float, include_expired: bool) -> list[dict]:
    with db.session() as s:
        stmt = select(SilenceRecord)
        if projects is not None:
            stmt = stmt.where(SilenceRecord.project.in_(list(projects)))
        if not include_expired:
            stmt = stmt.where(SilenceRecord.ends_at > ts(now))
        return [silence_dict(r, now) for r in s.scalars(stmt.order_by(SilenceRecord.created_at.desc()))]


def silences_for(db: Database, project: str, now: float) -> list[Silence]:
    """The project's silences that are not over yet, plus global ones (no project)."""
    with db.session() as s:
        rows = s.scalars(
            select(SilenceRecord).where(SilenceRecord.project.in_((project, ""))).where(SilenceRecord.ends_at > ts(now))
        )
        return [to_silence(r) for r in rows]


# -- channels ----------------------------------------------------------------------------------------------
def channel_dict(r: ChannelRecord) -> dict[str, Any]:
    return {"id": r.id, "project": r.project or None, "team": r.team or None, "name": r.name, "kind": r.kind,
            "config": r.config, "send_resolved": r.send_resolved, "created_by": r.created_by,
            "created_at": iso(r.created_at), "updated_at": iso(r.updated_at)}  # fmt: skip


def put_channel(db: Database, box: SecretBox, project: str, team: str, spec: ChannelSpec, actor: str) -> dict:
    with db.session() as s:
        row = s.scalar(
            select(ChannelRecord).where(
                ChannelRecord.project == project, ChannelRecord.team == team, ChannelRecord.name == spec.name
            )
        )
        created = row is None
        if row is None:
            row = ChannelRecord(project=project, team=team, name=spec.name, created_by=actor)
            s.add(row)
        row.kind, row.config, row.send_resolved = spec.kind, spec.shown, spec.send_resolved
        row.sealed = seal(box, spec, project, team)
        owner = f"project/{project}" if project else f"team/{team}"
        record(s, actor=actor, kind="channel.created" if created else "channel.updated",
               subject=f"{owner}/channel/{spec.name}", project=project or None,
               data={"kind": spec.kind, "target": spec.shown.get("target")})  # fmt: skip
        s.flush()
        return channel_dict(row)


def find_channel(db: Database, project: str, team: str, name: str) -> ChannelRecord:
    with db.session() as s:
        row = s.scalar(
            select(ChannelRecord).where(
                ChannelRecord.project == project, ChannelRecord.team == team, ChannelRecord.name == name
            )
        )
        if row is None:
            owner = f"project {project!r}" if project else f"team {team!r}"
            raise NotFound(f"channel {name!r} of {owner} not found", location="name")
        return row


def delete_channel(db: Database, project: str, team: str, name: str, actor: str) -> None:
    row = find_channel(db, project, team, name)
    with db.session() as s:
        found = s.get(ChannelRecord, row.id)
        if found is not None:
            s.delete(found)
        owner = f"project/{project}" if project else f"team/{team}"
        record(s, actor=actor, kind="channel.deleted", subject=f"{owner}/channel/{name}", project=project or None)


def list_channels(db: Database, project: str, team: str) -> list[dict[str, Any]]:
    with db.session() as s:
        rows = s.scalars(
            select(ChannelRecord)
            .where(ChannelRecord.project == project, ChannelRecord.team == team)
            .order_by(ChannelRecord.name)
        )
        return [channel_dict(r) for r in rows]


def channel_of(box: SecretBox, row: ChannelRecord, external_url: str) -> Channel:
    return build_channel(box, project=row.project, team=row.team, name=row.name, kind=row.kind, shown=row.config,
                         sealed=row.sealed, external_url=external_url)  # fmt: skip


def receivers_for(
    db: Database, box: SecretBox, project: str, teams: Sequence[str], external_url: str
) -> tuple[dict[str, list[Channel]], dict[str, bool]]:
    """receiver -> channels (the project's, and each owning team's), and whether each receiver sends resolved."""
    out: dict[str, list[Channel]] = {PROJECT_RECEIVER: []}
    send_resolved: dict[str, bool] = {}
    with db.session() as s:
        rows = list(
            s.scalars(
                select(ChannelRecord).where(
                    or_(
                        (ChannelRecord.project == project) & (ChannelRecord.team == ""),
                        (ChannelRecord.project == "") & ChannelRecord.team.in_(list(teams) or [""]),
                    )
                )
            )
        )
    for row in rows:
        receiver = PROJECT_RECEIVER if row.project else f"team:{row.team}"
        out.setdefault(receiver, []).append(channel_of(box, row, external_url))
        send_resolved[receiver] = send_resolved.get(receiver, False) or row.send_resolved
    return out, send_resolved


def record_deliveries(db: Database, project: str, deliveries: Sequence[DeliveryRecord], test: bool = False) -> None:
    """Every delivery is an event: channel, redacted target, outcome, attempts (never the URL's secret)."""
    if not deliveries:
        return
    with db.session() as s:
        for d in deliveries:
            kind = "notification.sent" if d.ok else "notification.failed"
            record(s, actor="controller:observe", kind=kind, subject=f"channel/{d.channel}", project=project,
                   data={"channel": d.channel, "kind": d.kind, "target": d.target, "receiver": d.receiver,
                         "group_key": d.group_key, "status": d.status, "attempts": d.attempts,
                         "status_code": d.status_code, "error": d.error, "test": test,
                         "duration_seconds": round(d.duration, 3)})  # fmt: skip
