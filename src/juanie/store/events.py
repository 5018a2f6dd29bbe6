"""The append-only event log: write one per change, read with filters and a cursor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from juanie.store.models import Event


def record(
    session: Session,
    *,
    actor: str,
    kind: str,
    subject: str,
    project: str | None = None,
    environment: str | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    """Add an event to the current unit of work, so it commits (or not) together with the change it describes."""
    event = Event(
        actor=actor, kind=kind, subject=subject, project=project, environment=environment, data=data or {}
    )
    session.add(event)
    return event


@dataclass(frozen=True)
class EventFilter:
    project: str | None = None
    environment: str | None = None
    kind: str | None = None  # exact kind, or a prefix ending in "." / "*" (e.g. "project.*")
    actor: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    projects_visible: frozenset[str] | None = None  # None = all (site admin)


def query(
    session: Session,
    flt: EventFilter,
    *,
    after: int | None = None,
    before: int | None = None,
    limit: int = 50,
    ascending: bool = False,
) -> list[Event]:
    """Newest first by default; `before`/`after` are event ids (the cursor)."""
    stmt = select(Event)
    if flt.projects_visible is not None:
        visible = sorted(flt.projects_visible)
        stmt = stmt.where(Event.project.in_(visible)) if visible else stmt.where(Event.id < 0)
    if flt.project:
        stmt = stmt.where(Event.project == flt.project)
    if flt.environment:
        stmt = stmt.where(Event.environment == flt.environment)
    if flt.kind:
        if flt.kind.endswith("*") or flt.kind.endswith("."):
            stmt = stmt.where(Event.kind.startswith(flt.kind.rstrip("*"), autoescape=True))
        else:
            stmt = stmt.where(Event.kind == flt.kind)
    if flt.actor:
        stmt = stmt.where(Event.actor == flt.actor)
    if flt.subject:
        stmt = stmt.where(Event.subject == flt.subject)
    if flt.since:
        stmt = stmt.where(Event.at >= flt.since)
    if flt.until:
        stmt = stmt.where(Event.at < flt.until)
    if after is not None:
        stmt = stmt.where(Event.id > after)
    if before is not None:
        stmt = stmt.where(Event.id < before)
    stmt = stmt.order_by(Event.id.asc() if ascending else Event.id.desc()).limit(limit)
    return list(session.scalars(stmt))


def to_dict(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "kind": event.kind,
        "subject": event.subject,
        "project": event.project,
        "environment": event.environment,
        "data": event.data,
    }
