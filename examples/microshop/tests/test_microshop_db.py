"""The database edge on both backends: the same portable SQL, constraint errors as values, lazy reconnect."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from microshop.db import ConstraintViolation, Database, DatabaseUnavailable

SCHEMA = ["CREATE TABLE IF NOT EXISTS things (id {id}, name TEXT NOT NULL UNIQUE)"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, run_id: str) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/things.db"
    base = request.getfixturevalue("postgres_url")
    # A table of our own inside the run's database: drop it so each parametrised run starts empty.
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS things")
    return base


def test_insert_select_and_unique_violation(database_url: str) -> None:
    async def scenario() -> None:
        db = Database(database_url, SCHEMA, logging.getLogger("test"))
        try:
            row = await db.fetch_one("INSERT INTO things (name) VALUES (?) RETURNING id, name", ("a",))
            assert row == {"id": 1, "name": "a"}
            await db.execute("INSERT INTO things (name) VALUES (?)", ("b",))
            rows = await db.fetch_all("SELECT name FROM things ORDER BY id")
            assert [r["name"] for r in rows] == ["a", "b"]
            with pytest.raises(ConstraintViolation):
                await db.execute("INSERT INTO things (name) VALUES (?)", ("a",))
            assert await db.fetch_one("SELECT id FROM things WHERE name = ?", ("zzz",)) is None
        finally:
            db.close()

    asyncio.run(scenario())


def test_unopenable_database_is_unavailable_and_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="test.db")
    blocker = tmp_path / "file"
    blocker.write_text("")

    async def scenario() -> None:
        db = Database(f"sqlite:///{blocker}/x.db", SCHEMA, logging.getLogger("test.db"))
        assert await db.ping() is False
        assert await db.ping() is False
        with pytest.raises(DatabaseUnavailable, match="database is unreachable"):
            await db.fetch_one("SELECT 1")
        blocker.unlink()  # the obstacle goes away: the next call connects by itself
        assert await db.ping() is True
        db.close()

    asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records if r.name == "test.db"]
    assert sum("is unreachable" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1
