"""Alembic environment: runs on the connection the server hands in, or on sqlalchemy.url for the CLI."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from juanie.store import observe_models  # noqa: F401  (registers the observe tables on Base)
from juanie.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        _run(conn)
