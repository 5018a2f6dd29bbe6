"""Project and environment secrets: write-only from outside, decrypted only where a process needs them.

Only names, versions and who changed them ever leave this module; values go to engines and pipeline steps through
`resolve`, which the API never calls.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from juanie.domain import events as kinds
from juanie.domain.errors import Invalid, NotFound
from juanie.store.crypto import SecretBox
from juanie.store.events import record
from juanie.store.models import Environment, Project, Secret

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
MAX_VALUE_BYTES = 64 * 1024


def _context(project: Project, env: Environment | None, name: str) -> str:
    return f"{project.name}/{env.name if env else '*'}/{name}"


def _find(session: Session, project: Project, env: Environment | None, name: str) -> Secret | None:
    stmt = select(Secret).where(Secret.project_id == project.id, Secret.name == name)
    stmt = stmt.where(Secret.environment_id == env.id) if env else stmt.where(Secret.environment_id.is_(None))
    return session.scalar(stmt)


def set_secret(
    session: Session,
    box: SecretBox,
    project: Project,
    env: Environment | None,
    name: str,
    value: str,
    *,
    actor: str,
) -> Secret:
    if not _NAME.match(name):
        raise Invalid(
            "secret name: letters, digits, '_', '.', '-', starting with a letter or '_'", location="name"
        )
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise Invalid(f"secret value: at most {MAX_VALUE_BYTES} bytes", location="value")
    sealed = box.seal(value, _context(project, env, name))
    secret = _find(session, project, env, name)
    if secret is None:
        secret = Secret(
            project_id=project.id,
            environment_id=env.id if env else None,
            name=name,
            ciphertext=sealed,
            version=1,
            updated_by=actor,
        )
        session.add(secret)
    else:
        secret.ciphertext, secret.version, secret.updated_by = sealed, secret.version + 1, actor
    session.flush()
    record(
        session,
        actor=actor,
        kind=kinds.SECRET_SET,
        subject=f"secret/{_context(project, env, name)}",
        project=project.name,
        environment=env.name if env else None,
        data={"name": name, "version": secret.version, "scope": env.name if env else "project"},
    )
    return secret


def delete_secret(
    session: Session, project: Project, env: Environment | None, name: str, *, actor: str
) -> None:
    secret = _find(session, project, env, name)
    if secret is None:
        raise NotFound(f"secret {name!r} not found", location="name")
    session.delete(secret)
    record(
        session,
        actor=actor,
        kind=kinds.SECRET_DELETED,
        subject=f"secret/{_context(project, env, name)}",
        project=project.name,
        environment=env.name if env else None,
        data={"name": name},
    )


def list_secrets(
    session: Session, project: Project, env: Environment | None = None, *, include_project: bool = True
) -> list[dict[str, Any]]:
    """Metadata only. With an environment, project-wide secrets are listed too (they apply to it)."""
    stmt = select(Secret).where(Secret.project_id == project.id)
    if env is not None:
        cond = Secret.environment_id == env.id
        if include_project:
            cond = cond | Secret.environment_id.is_(None)
        stmt = stmt.where(cond)
    else:
        stmt = stmt.where(Secret.environment_id.is_(None))
    env_names = {e.id: e.name for e in project.environments}
    return [
        {
            "name": s.name,
            "scope": env_names.get(s.environment_id, "?") if s.environment_id else "project",
            "version": s.version,
            "updated_by": s.updated_by,
            "updated_at": s.updated_at.isoformat() if s.updated_at else None,
        }
        for s in session.scalars(stmt.order_by(Secret.name, Secret.environment_id))
    ]


RESERVED_PREFIX = "juanie."
"""Secrets Juanie keeps for itself (webhook secret, repository credentials): never injected into processes."""


def resolve(session: Session, box: SecretBox, project: Project, env: Environment | None, *,
            include_reserved: bool = False) -> dict[str, str]:
    """Plaintext values for a process: project-wide first, environment-specific ones override."""
    values: dict[str, str] = {}
    stmt = select(Secret).where(Secret.project_id == project.id, Secret.environment_id.is_(None))
    for secret in session.scalars(stmt):
        values[secret.name] = box.open(secret.ciphertext, _context(project, None, secret.name))
    if env is not None:
        for secret in session.scalars(select(Secret).where(Secret.environment_id == env.id)):
            values[secret.name] = box.open(secret.ciphertext, _context(project, env, secret.name))
    if not include_reserved:
        values = {k: v for k, v in values.items() if not k.startswith(RESERVED_PREFIX)}
    return values
