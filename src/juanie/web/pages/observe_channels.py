"""Settings → Notifications: the channels a viewer can see, and which of them they may test.

Only what the API lists is shown (kind, redacted target, owner); the sealed part never leaves the store. The
"send test" button calls ``POST /api/{projects|teams}/{owner}/channels/{name}/test``, which checks the role again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import select

from juanie.domain.rbac import Role
from juanie.store import accounts
from juanie.store.models import Project
from juanie.store.observe_models import ChannelRecord


@dataclass(frozen=True)
class ChannelRow:
    owner_kind: str  # project | team
    owner: str
    name: str
    kind: str
    target: str
    send_resolved: bool
    can_test: bool

    @property
    def test_url(self) -> str:
        base = "projects" if self.owner_kind == "project" else "teams"
        return f"/api/{base}/{quote(self.owner, safe='')}/channels/{quote(self.name, safe='')}/test"


def channels_for(db: Any, username: str) -> list[ChannelRow]:
    """Project channels of the viewer's projects (testable by maintainers), and team channels for administrators."""
    with db.session() as s:
        user = accounts.get_user(s, username)
        visible = accounts.visible_projects(s, user)
        stmt = select(ChannelRecord).order_by(ChannelRecord.project, ChannelRecord.team, ChannelRecord.name)
        rows = list(s.scalars(stmt))
        roles: dict[str, Role | None] = {}
        out: list[ChannelRow] = []
        for r in rows:
            if r.project:
                if visible is not None and r.project not in visible:
                    continue
                if r.project not in roles:
                    project = s.scalar(select(Project).where(Project.name == r.project))
                    roles[r.project] = accounts.project_role(s, user, project) if project is not None else None
                role = roles[r.project]
                can = user.is_admin or (role is not None and role >= Role.maintainer)
                owner_kind, owner = "project", r.project
            else:
                if not user.is_admin:
                    continue
                can, owner_kind, owner = True, "team", r.team
            target = str((r.config or {}).get("target") or "")
            out.append(ChannelRow(owner_kind, owner, r.name, r.kind, target, r.send_resolved, can))
        return out
