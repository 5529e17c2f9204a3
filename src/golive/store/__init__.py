"""The store: SQLAlchemy models, sessions, repositories, Alembic migrations."""
