"""Who may decide an approval: the four-eyes rule and its audited override, as pure rules.

On an environment whose approval is *required*, the person who asked for a deployment cannot be the one who lets it
through: a second person approves. An owner of the project (or a site administrator) may override that in an
emergency, with a reason; the override is its own approval state and event, never a silent approval.
"""

from __future__ import annotations

from juanie.domain.rbac import Role


def approval_refusal(*, mode: str, requested_by: str, actor: str) -> str | None:
    """Why `actor` may not approve a deployment `requested_by` asked for (None: they may)."""
    if mode == "required" and requested_by and actor == requested_by:
        return (
            f"{actor} requested this deployment; an approval that is required needs a second person "
            "(four eyes). Ask another member with deploy permission to approve it, or an owner may override "
            "with a reason (`juanie approve ID --override --reason ...`)"
        )
    return None


def override_refusal(*, role: Role | None, is_admin: bool) -> str | None:
    """Why this person may not override the four-eyes rule (None: they may): only owners and site administrators."""
    if is_admin or role is Role.owner:
        return None
    have = role.name if role else "not a member"
    return f"overriding an approval needs the owner role on the project; you are {have}"
