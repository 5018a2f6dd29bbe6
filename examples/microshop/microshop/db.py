"""One small database interface over SQLite (the default) and PostgreSQL (when ``DATABASE_URL`` says so).

Services write their SQL once with ``?`` placeholders and ``{id}`` for the auto-increment primary key column;
the dialect fills in the rest. The connection is opened lazily and re-opened after a failure, so a service
whose database is down still starts, answers ``/health``, reports 503 on ``/ready``, and recovers by itself
when the database comes back.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from microshop.config import ConfigError, redact_url
from microshop.logs import log_fields

Row = dict[str, Any]


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached right now; the request should answer 503, not 500."""


class ConstraintViolation(RuntimeError):
    """A write broke a uniqueness or integrity rule (two requests raced); the request should answer 409."""


@dataclass(frozen=True)
class DatabaseTarget:
    """Where the data lives, parsed from ``DATABASE_URL``."""

    dialect: str  # "sqlite" or "postgresql"
    location: str  # a file path for sqlite, the connection URL for postgresql

    @property
    def display(self) -> str:
        return redact_url(self.location) if self.dialect == "postgresql" else f"sqlite:///{self.location}"


def parse_database_url(url: str) -> DatabaseTarget:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``sqlite:///:memory:`` or ``postgresql://…``."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise ConfigError(f"DATABASE_URL sqlite form is sqlite:///<path>, got {url!r}")
        return DatabaseTarget("sqlite", path)
    if scheme in ("postgresql", "postgres"):
        return DatabaseTarget("postgresql", "postgresql" + url[len(scheme) :])
    raise ConfigError(f"DATABASE_URL must start with sqlite:/// or postgresql://, got {redact_url(url)!r}")


def translate(sql: str, dialect: str) -> str:
    """Turn microshop's portable SQL into the dialect's: placeholders and the auto-increment id column."""
    if dialect == "postgresql":
        return sql.replace("{id}", "BIGSERIAL PRIMARY KEY").replace("?", "%s")
    return sql.replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT")


class _Backend(Protocol):
    def connect(self) -> None: ...
    def run(self, sql: str, params: Sequence[Any], fetch: str) -> Any: ...
    def close(self) -> None: ...


class _SqliteBackend:
    def __init__(self, path: str) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None

    def connect(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5.0)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=5000")
        self.conn = conn

    def run(self, sql: str, params: Sequence[Any], fetch: str) -> Any:
        assert self.conn is not None
        cur = self.conn.execute(sql, tuple(params))
        if fetch == "one":
            row = cur.fetchone()
            return dict(row) if row is not None else None
        if fetch == "all":
            return [dict(r) for r in cur.fetchall()]
        return None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class _PostgresBackend:
    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: Any = None

    def connect(self) -> None:
        import psycopg  # imported only when PostgreSQL is configured, to keep startup fast
        from psycopg.rows import dict_row

        self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=3, row_factory=dict_row)

    def run(self, sql: str, params: Sequence[Any], fetch: str) -> Any:
        assert self.conn is not None
        with self.conn.cursor() as cur:
            cur.execute(sql, tuple(params))
            if fetch == "one":
                return cur.fetchone()
            if fetch == "all":
                return cur.fetchall()
            return None

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None


class Database:
    """A lazily connected, self-healing connection plus the service's schema.

    Calls run in a worker thread (one at a time, behind a lock) so the event loop keeps serving ``/health``
    while a query waits on a slow disk or network.
    """

    def __init__(self, url: str, schema: Sequence[str], logger: logging.Logger) -> None:
        self.target = parse_database_url(url)
        self.schema = [translate(s, self.target.dialect) for s in schema]
        self.logger = logger
        self._lock = threading.Lock()
        self._backend: _Backend | None = None
        self._reported_down = False

    @property
    def dialect(self) -> str:
        return self.target.dialect

    def _make_backend(self) -> _Backend:
        if self.target.dialect == "sqlite":
            return _SqliteBackend(self.target.location)
        return _PostgresBackend(self.target.location)

    def _ensure(self) -> _Backend:
        if self._backend is not None:
            return self._backend
        backend = self._make_backend()
        try:
            backend.connect()
            for statement in self.schema:
                backend.run(statement, (), "none")
        except Exception as exc:
            backend.close()
            if not self._reported_down:
                self._reported_down = True
                self.logger.error(
                    "database %s is unreachable (%s); /ready answers 503 until it is back",
                    self.target.display,
                    _describe(exc),
                    extra=log_fields(dependency="database"),
                )
            raise DatabaseUnavailable(f"database is unreachable: {_describe(exc)}") from None
        if self._reported_down:
            self.logger.info("database %s is reachable again", self.target.display)
        else:
            self.logger.info("using database %s", self.target.display, extra=log_fields(dialect=self.dialect))
        self._reported_down = False
        self._backend = backend
        return backend

    def _call(self, sql: str, params: Sequence[Any], fetch: str) -> Any:
        with self._lock:
            backend = self._ensure()
            try:
                return backend.run(translate(sql, self.target.dialect), params, fetch)
            except Exception as exc:
                if _is_connection_error(exc):
                    backend.close()
                    self._backend = None
                    raise DatabaseUnavailable(f"database connection lost: {_describe(exc)}") from None
                if any(cls.__name__ == "IntegrityError" for cls in type(exc).__mro__):
                    raise ConstraintViolation(_describe(exc)) from None
                raise

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return await asyncio.to_thread(self._call, sql, params, "one")

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await asyncio.to_thread(self._call, sql, params, "all")

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await asyncio.to_thread(self._call, sql, params, "none")

    async def ping(self) -> bool:
        """True when a trivial query succeeds; used by ``/ready``."""
        try:
            await asyncio.wait_for(self.fetch_one("SELECT 1 AS ok"), timeout=5.0)
        except (DatabaseUnavailable, TimeoutError):
            return False
        return True

    async def connect(self) -> bool:
        """Try to connect and create the schema now (at startup); a failure is logged, not raised."""
        return await self.ping()

    def close(self) -> None:
        with self._lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        return "unable to open" in str(exc) or "disk I/O" in str(exc)
    # psycopg's connection-level failures (AdminShutdown, ConnectionTimeout, ...) derive from these two.
    return any(
        cls.__module__.startswith("psycopg") and cls.__name__ in ("OperationalError", "InterfaceError")
        for cls in type(exc).__mro__
    )
