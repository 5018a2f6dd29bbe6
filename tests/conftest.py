"""Shared fixtures: databases on both backends, free ports, and polling with a deadline (never bare sleeps)."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port, wait_until  # noqa: F401  (re-exported for tests)

# Servers under test run without an engine unless a test asks for one (with its own free gateway ports), so that
# no test starts a gateway on the default port or leaves one behind.
os.environ["JUANIE_ENGINE"] = "none"
# Tests keep source repositories under the temporary directory (tmp_path); servers and in-process apps they start
# may use local repositories there as admins. The default (no local repositories at all) stays the server's own.
os.environ["JUANIE_LOCAL_REPO_ROOTS"] = os.path.realpath(tempfile.gettempdir())

PG_ADMIN_URL = os.environ.get("JUANIE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL.replace("+psycopg", ""), connect_timeout=3):
            return True
    except Exception:
        return False


class PostgresDatabases:
    """Throwaway databases on the machine's PostgreSQL: one database per test run, one schema per test.

    Schemas instead of databases because PostgreSQL checkpoints on every DROP DATABASE (seconds each); a schema is
    dropped in milliseconds. Each URL pins its schema with `search_path`, so the code under test sees a private,
    empty database.
    """

    def __init__(self) -> None:
        from sqlalchemy import create_engine, text

        self.name = f"juanie_t_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        admin.dispose()
        self.engine = create_engine(self.base_url, isolation_level="AUTOCOMMIT")
        self.count = 0

    @property
    def base_url(self) -> str:
        return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{self.name}"

    def fresh(self) -> str:
        from sqlalchemy import text

        self.count += 1
        schema = f"t{self.count}"
        with self.engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        return f"{self.base_url}?options=-csearch_path%3D{schema}"

    def drop_all(self) -> None:
        from sqlalchemy import create_engine, text

        self.engine.dispose()
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases]:
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}; `make test` should have started it")
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    databases = PostgresDatabases()
    yield databases
    databases.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on both backends: a fresh SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'juanie.db'}"
    return request.getfixturevalue("postgres").fresh()
