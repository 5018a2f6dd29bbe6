"""Users, teams, API tokens, project memberships and environment grants — and the lookups RBAC needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from juanie.domain import events as kinds
from juanie.domain.credentials import hash_password, hash_token, new_token, token_display_prefix
from juanie.domain.errors import Conflict, Invalid, NotFound
from juanie.domain.rbac import EnvPermission, Role
from juanie.store.events import record
from juanie.store.models import ApiToken, EnvGrant, Environment, Membership, Project, Team, TeamMember, User


def create_user(
    session: Session,
    username: str,
    *,
    password: str | None = None,
    is_admin: bool = False,
    display_name: str = "",
    email: str = "",
    actor: str = "system",
) -> User:
    if (
        not username
        or len(username) > 64
        or not username.replace("-", "").replace("_", "").replace(".", "").isalnum()
    ):
        raise Invalid("username: use letters, digits, '-', '_' or '.' (1-64 characters)", location="username")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists", location="username")
    if password is not None and len(password) < 8:
        raise Invalid("password: at least 8 characters", location="password")
    user = User(
        username=username,
        is_admin=is_admin,
        display_name=display_name or username,
        email=email,
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    session.flush()
    record(
        session, actor=actor, kind=kinds.USER_CREATED, subject=f"user/{username}", data={"is_admin": is_admin}
    )
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"user {username!r} not found", location="username")
    return user


def issue_token(
    session: Session,
    user: User,
    name: str,
    *,
    kind: str = "api",
    ttl: timedelta | None = None,
    actor: str | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; the plaintext is returned once and only its hash is stored."""
    plaintext = new_token()
    token = ApiToken(
        user_id=user.id,
        name=name[:128] or "token",
        prefix=token_display_prefix(plaintext),
        token_hash=hash_token(plaintext),
        kind=kind,
        expires_at=datetime.now(UTC) + ttl if ttl else None,
    )
    session.add(token)
    session.flush()
    if kind == "api":
        record(
            session,
            actor=actor or user.username,
            kind=kinds.TOKEN_CREATED,
            subject=f"user/{user.username}",
            data={"token_id": token.id, "name": token.name, "prefix": token.prefix},
        )
    return token, plaintext


def authenticate_token(session: Session, plaintext: str) -> tuple[User, ApiToken] | None:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(plaintext)))
    if token is None or token.revoked_at is not None:
        return None
    now = datetime.now(UTC)
    if token.expires_at is not None and token.expires_at <= now:
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now  # coarse, so a busy client does not write on every request
    return user, token


def revoke_token(session: Session, token: ApiToken, *, actor: str) -> None:
    if token.revoked_at is None:
        token.revoked_at = datetime.now(UTC)
        record(
            session,
            actor=actor,
            kind=kinds.TOKEN_REVOKED,
            subject=f"user/{token.user.username}",
            data={"token_id": token.id, "name": token.name},
        )


def list_tokens(session: Session, user: User) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.kind == "api").order_by(ApiToken.id)
        )
    )


def user_team_ids(session: Session, user: User) -> list[int]:
    return list(session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user.id)))


def create_team(session: Session, name: str, *, actor: str) -> Team:
    if session.scalar(select(Team.id).where(Team.name == name)) is not None:
        raise Conflict(f"team {name!r} already exists", location="name")
    team = Team(name=name)
    session.add(team)
    session.flush()
    record(session, actor=actor, kind=kinds.TEAM_CREATED, subject=f"team/{name}")
    return team


def get_team(session: Session, name: str) -> Team:
    team = session.scalar(select(Team).where(Team.name == name))
    if team is None:
        raise NotFound(f"team {name!r} not found", location="team")
    return team


def add_team_member(session: Session, team: Team, user: User, *, actor: str) -> None:
    if session.get(TeamMember, (team.id, user.id)) is None:
        session.add(TeamMember(team_id=team.id, user_id=user.id))
        record(
            session,
            actor=actor,
            kind=kinds.TEAM_MEMBER_ADDED,
            subject=f"team/{team.name}",
            data={"user": user.username},
        )


@dataclass(frozen=True)
class Access:
    """What one caller may see and do on one project: the input of the pure RBAC rules."""

    role: Role | None
    is_admin: bool


def project_role(session: Session, user: User, project: Project) -> Role | None:
    """The highest role the user has on the project, directly or through a team."""
    team_ids = user_team_ids(session, user)
    stmt = select(Membership.role).where(Membership.project_id == project.id)
    if team_ids:
        stmt = stmt.where((Membership.user_id == user.id) | (Membership.team_id.in_(team_ids)))
    else:
        stmt = stmt.where(Membership.user_id == user.id)
    roles = [Role.parse(r) for r in session.scalars(stmt)]
    return max(roles, default=None)


def visible_projects(session: Session, user: User) -> frozenset[str] | None:
    """Names of the projects the user may read; None means all (site admin)."""
    if user.is_admin:
        return None
    team_ids = user_team_ids(session, user)
    cond = Membership.user_id == user.id
    if team_ids:
        cond = cond | Membership.team_id.in_(team_ids)
    stmt = select(Project.name).join(Membership, Membership.project_id == Project.id).where(cond)
    return frozenset(session.scalars(stmt))


def env_grants_for(session: Session, user: User, env: Environment) -> list[EnvPermission]:
    team_ids = user_team_ids(session, user)
    cond = EnvGrant.user_id == user.id
    if team_ids:
        cond = cond | EnvGrant.team_id.in_(team_ids)
    stmt = select(EnvGrant.permission).where(EnvGrant.environment_id == env.id, cond)
    return [EnvPermission.parse(p) for p in session.scalars(stmt)]


def set_membership(
    session: Session,
    project: Project,
    *,
    role: Role,
    user: User | None = None,
    team: Team | None = None,
    actor: str,
) -> None:
    if (user is None) == (team is None):
        raise Invalid("name exactly one of user or team", location="user")
    stmt = select(Membership).where(Membership.project_id == project.id)
    stmt = stmt.where(Membership.user_id == user.id) if user else stmt.where(Membership.team_id == team.id)  # type: ignore[union-attr]
    existing = session.scalar(stmt)
    if existing is None:
        session.add(
            Membership(
                project_id=project.id,
                user_id=user.id if user else None,
                team_id=team.id if team else None,
                role=role.name,
            )
        )
    else:
        if existing.role == Role.owner.name and role != Role.owner and _owner_count(session, project) <= 1:
            raise Conflict(f"project {project.name!r} must keep at least one owner", location="role")
        existing.role = role.name
    record(
        session,
        actor=actor,
        kind=kinds.MEMBER_SET,
        subject=f"project/{project.name}",
        project=project.name,
        data={
            "user": user.username if user else None,
            "team": team.name if team else None,
            "role": role.name,
        },
    )


def remove_membership(
    session: Session, project: Project, *, user: User | None = None, team: Team | None = None, actor: str
) -> None:
    stmt = select(Membership).where(Membership.project_id == project.id)
    stmt = stmt.where(Membership.user_id == user.id) if user else stmt.where(Membership.team_id == team.id)  # type: ignore[union-attr]
    existing = session.scalar(stmt)
    if existing is None:
        raise NotFound("no such member", location="user")
    if existing.role == Role.owner.name and _owner_count(session, project) <= 1:
        raise Conflict(f"project {project.name!r} must keep at least one owner", location="user")
    session.delete(existing)
    record(
        session,
        actor=actor,
        kind=kinds.MEMBER_REMOVED,
        subject=f"project/{project.name}",
        project=project.name,
        data={"user": user.username if user else None, "team": team.name if team else None},
    )


def _owner_count(session: Session, project: Project) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.project_id == project.id, Membership.role == Role.owner.name)
        )
        or 0
    )


def list_members(session: Session, project: Project) -> list[dict[str, str | None]]:
    rows = session.execute(
        select(Membership.role, User.username, Team.name)
        .select_from(Membership)
        .outerjoin(User, User.id == Membership.user_id)
        .outerjoin(Team, Team.id == Membership.team_id)
        .where(Membership.project_id == project.id)
        .order_by(Membership.id)
    )
    return [{"user": u, "team": t, "role": r} for r, u, t in rows]


def set_env_grant(
    session: Session,
    project: Project,
    env: Environment,
    *,
    permission: EnvPermission,
    user: User | None = None,
    team: Team | None = None,
    actor: str,
) -> None:
    if (user is None) == (team is None):
        raise Invalid("name exactly one of user or team", location="user")
    stmt = select(EnvGrant).where(EnvGrant.environment_id == env.id)
    stmt = stmt.where(EnvGrant.user_id == user.id) if user else stmt.where(EnvGrant.team_id == team.id)  # type: ignore[union-attr]
    existing = session.scalar(stmt)
    if existing is None:
        session.add(
            EnvGrant(
                environment_id=env.id,
                user_id=user.id if user else None,
                team_id=team.id if team else None,
                permission=permission.name,
            )
        )
    else:
        existing.permission = permission.name
    record(
        session,
        actor=actor,
        kind=kinds.ENV_GRANT_SET,
        subject=f"environment/{project.name}/{env.name}",
        project=project.name,
        environment=env.name,
        data={
            "user": user.username if user else None,
            "team": team.name if team else None,
            "permission": permission.name,
        },
    )


def list_env_grants(session: Session, env: Environment) -> list[dict[str, str | None]]:
    rows = session.execute(
        select(EnvGrant.permission, User.username, Team.name)
        .select_from(EnvGrant)
        .outerjoin(User, User.id == EnvGrant.user_id)
        .outerjoin(Team, Team.id == EnvGrant.team_id)
        .where(EnvGrant.environment_id == env.id)
        .order_by(EnvGrant.id)
    )
    return [{"user": u, "team": t, "permission": p} for p, u, t in rows]


def upgrade_password_hash(session: Session, user_id: int, old: str, new: str) -> None:
    """Store a fresh hash of the same password, unless the password changed since `old` was read."""
    session.execute(
        update(User)
        .where(User.id == user_id, User.password_hash == old)
        .values(password_hash=new)
        .execution_options(synchronize_session=False)
    )
