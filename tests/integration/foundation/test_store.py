"""The store on both backends: migrations, project defaults, transitions with events, secrets at rest, leases."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select

from juanie.domain.errors import Conflict, Invalid
from juanie.store import accounts, events, leases, projects, secrets
from juanie.store.crypto import SecretBox
from juanie.store.db import Database, table_names
from juanie.store.models import Event, Secret


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def admin(db):
    with db.session() as s:
        return accounts.create_user(s, "alice", is_admin=False)


def test_migrations_create_every_table_and_are_idempotent(db):
    db.migrate()
    assert {"projects", "environments", "events", "secrets", "users", "api_tokens", "leases"} <= set(
        table_names(db.engine)
    )


def test_sqlite_runs_in_wal_mode(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'j.db'}")
    with database.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    database.dispose()


def test_project_gets_the_default_environments_and_events(db, admin):
    with db.session() as s:
        projects.create_project(s, name="shop", actor=admin)
    with db.session() as s:
        project = projects.get_project(s, "shop")
        envs = {e.name: e for e in project.environments}
        assert [e.name for e in project.environments] == ["dev", "staging", "prod"]
        assert [envs[n].replicas for n in ("dev", "staging", "prod")] == [1, 2, 3]
        assert [envs[n].size for n in ("dev", "staging", "prod")] == ["S", "M", "L"]
        assert [envs[n].approval for n in ("dev", "staging", "prod")] == ["none", "optional", "required"]
        assert envs["dev"].branches == ["feature/*", "develop"] and envs["prod"].branches == ["main"]
        assert envs["staging"].namespace == "shop-staging"
        assert project.status == "initializing" and all(e.status == "creating" for e in envs.values())
        assert accounts.project_role(s, admin, project).name == "owner"
        kinds = [e.kind for e in events.query(s, events.EventFilter(project="shop"), ascending=True)]
        assert kinds == ["project.created"] + ["environment.created"] * 3


def test_duplicate_and_invalid_names_are_user_errors(db, admin):
    with db.session() as s:
        projects.create_project(s, name="shop", actor=admin)
    with pytest.raises(Conflict, match="already exists"), db.session() as s:
        projects.create_project(s, name="shop", actor=admin)
    with pytest.raises(Invalid, match="lowercase"), db.session() as s:
        projects.create_project(s, name="Shop_1", actor=admin)


def test_transitions_follow_the_lifecycle_and_write_events(db, admin):
    with db.session() as s:
        project = projects.create_project(s, name="shop", actor=admin)
    with db.session() as s:
        project = projects.get_project(s, "shop")
        with pytest.raises(Conflict, match="initializing -> archived is not allowed"):
            projects.transition_project(s, project, "archived", actor="alice")
        projects.transition_project(s, project, "active", actor="alice", reason="ready")
        projects.transition_project(s, project, "suspended", actor="alice")
    with db.session() as s:
        found = events.query(
            s, events.EventFilter(project="shop", kind="project.transitioned"), ascending=True
        )
        assert [(e.data["from"], e.data["to"]) for e in found] == [
            ("initializing", "active"),
            ("active", "suspended"),
        ]


def test_environment_update_moves_active_to_updating(db, admin):
    with db.session() as s:
        project = projects.create_project(s, name="shop", actor=admin)
        for env in project.environments:
            projects.transition_environment(s, project, env, "active", actor="t")
    with db.session() as s:
        project = projects.get_project(s, "shop")
        env = projects.get_environment(s, project, "prod")
        assert projects.update_environment(s, project, env, {"replicas": 5}, actor="alice") == ["replicas"]
        assert env.status == "updating" and env.generation == 2
        with pytest.raises(Invalid, match="size: expected one of S, M, L"):
            projects.update_environment(s, project, env, {"size": "XL"}, actor="alice")


def test_event_cursor_pages_through_everything_once(db, admin):
    with db.session() as s:
        for i in range(25):
            events.record(s, actor="t", kind="test.tick", subject=f"tick/{i}", project="p")
    seen, cursor = [], None
    while True:
        with db.session() as s:
            page = events.query(s, events.EventFilter(project="p"), before=cursor, limit=10)
        if not page:
            break
        seen += [e.subject for e in page]
        cursor = page[-1].id
    assert seen == [f"tick/{i}" for i in reversed(range(25))]


def test_secrets_are_encrypted_at_rest_and_scoped(db, admin):
    box = SecretBox(os.urandom(32))
    with db.session() as s:
        project = projects.create_project(s, name="shop", actor=admin)
        prod = projects.get_environment(s, project, "prod")
        secrets.set_secret(s, box, project, None, "API_KEY", "project-wide-value-123", actor="alice")
        secrets.set_secret(s, box, project, prod, "API_KEY", "prod-value-456", actor="alice")
        secrets.set_secret(s, box, project, prod, "API_KEY", "prod-value-789", actor="alice")
    with db.session() as s:
        raw = b"".join(s.scalars(select(Secret.ciphertext)))
        assert b"value" not in raw
        dumped = " ".join(str(e.data) for e in s.scalars(select(Event)))
        assert "value-" not in dumped
        project = projects.get_project(s, "shop")
        prod = projects.get_environment(s, project, "prod")
        dev = projects.get_environment(s, project, "dev")
        assert secrets.resolve(s, box, project, prod) == {"API_KEY": "prod-value-789"}
        assert secrets.resolve(s, box, project, dev) == {"API_KEY": "project-wide-value-123"}
        listed = secrets.list_secrets(s, project, prod)
        assert {(x["scope"], x["version"]) for x in listed} == {("project", 1), ("prod", 2)}
        assert "value" not in str(listed)


def test_lease_is_exclusive_until_it_expires(db):
    assert leases.try_acquire(db.engine, "c", "a", now=100.0, duration=10)
    assert not leases.try_acquire(db.engine, "c", "b", now=105.0, duration=10)
    assert leases.try_acquire(db.engine, "c", "a", now=108.0, duration=10)  # renew
    assert not leases.try_acquire(db.engine, "c", "b", now=117.0, duration=10)
    assert leases.try_acquire(db.engine, "c", "b", now=118.5, duration=10)  # expired at 118
    assert not leases.try_acquire(db.engine, "c", "a", now=119.0, duration=10)
    state = leases.current(db.engine, "c")
    assert state.holder == "b" and state.transitions == 2
    leases.release(db.engine, "c", "b")
    assert leases.try_acquire(db.engine, "c", "a", now=120.0, duration=10)
