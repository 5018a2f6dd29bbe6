"""The pure RBAC rules: role order, project actions, environment permissions and restricted environments."""

from __future__ import annotations

import pytest

from juanie.domain.rbac import PROJECT_ACTIONS, EnvPermission, Role, env_permission, role_allows


def test_roles_are_ordered():
    assert Role.viewer < Role.developer < Role.maintainer < Role.owner


@pytest.mark.parametrize("action", sorted(PROJECT_ACTIONS))
def test_an_action_is_allowed_from_its_least_role_upwards(action):
    least = PROJECT_ACTIONS[action]
    for role in Role:
        assert role_allows(role, action) is (role >= least)
    assert role_allows(None, action) is False
    assert role_allows(None, action, is_admin=True) is True


def test_viewer_may_only_read():
    allowed = {a for a in PROJECT_ACTIONS if role_allows(Role.viewer, a)}
    assert allowed == {"project.read", "secrets.read_names"}


def test_unknown_action_is_a_bug_not_a_silent_deny():
    with pytest.raises(KeyError):
        role_allows(Role.owner, "project.frobnicate")


def test_environment_permission_follows_the_role():
    assert env_permission(Role.viewer) is EnvPermission.read
    assert env_permission(Role.developer) is EnvPermission.deploy
    assert env_permission(Role.maintainer) is EnvPermission.admin
    assert env_permission(None) is EnvPermission.none


def test_restricted_environment_needs_a_named_grant_to_deploy():
    assert env_permission(Role.developer, restricted=True) is EnvPermission.read
    assert env_permission(Role.maintainer, restricted=True) is EnvPermission.read
    assert env_permission(Role.owner, restricted=True) is EnvPermission.admin
    assert env_permission(Role.developer, [EnvPermission.deploy], restricted=True) is EnvPermission.deploy
    assert env_permission(Role.viewer, [EnvPermission.read, EnvPermission.deploy], restricted=True) is (
        EnvPermission.deploy
    )


def test_parse_errors_name_the_choices():
    with pytest.raises(ValueError, match="viewer, developer, maintainer, owner"):
        Role.parse("god")
    with pytest.raises(ValueError, match="read, deploy or admin"):
        EnvPermission.parse("none")
