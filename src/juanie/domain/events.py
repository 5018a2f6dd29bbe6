"""The kinds of events Juanie records. One append-only log feeds audit, timelines, notifications and DORA metrics.

Kinds are dotted `<subject>.<verb>` strings; keeping them in one place lets the UI filter on them and lets tests
check that every change writes one.
"""

from __future__ import annotations

PROJECT_CREATED = "project.created"
PROJECT_UPDATED = "project.updated"
PROJECT_TRANSITIONED = "project.transitioned"
ENVIRONMENT_CREATED = "environment.created"
ENVIRONMENT_UPDATED = "environment.updated"
ENVIRONMENT_TRANSITIONED = "environment.transitioned"
MEMBER_SET = "member.set"
MEMBER_REMOVED = "member.removed"
ENV_GRANT_SET = "environment.grant_set"
ENV_GRANT_REMOVED = "environment.grant_removed"
SECRET_SET = "secret.set"
SECRET_DELETED = "secret.deleted"
USER_CREATED = "user.created"
TOKEN_CREATED = "token.created"
TOKEN_REVOKED = "token.revoked"
LOGIN_FAILED = "auth.login_failed"
LOGIN_SUCCEEDED = "auth.login_succeeded"
LEADER_ACQUIRED = "controller.leader_acquired"
TEAM_CREATED = "team.created"
TEAM_MEMBER_ADDED = "team.member_added"
