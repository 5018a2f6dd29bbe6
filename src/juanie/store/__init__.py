"""The store: SQLAlchemy models, sessions, Alembic migrations, and the operations on them."""
