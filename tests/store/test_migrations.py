"""The store opens, migrates and holds data on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from sqlalchemy import inspect

from golive.services.runtime import Runtime
from golive.store.db import open_store
from golive.store.models import Base


def test_migrations_create_every_table(runtime: Runtime) -> None:
    tables = set(inspect(runtime.store.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_opening_twice_is_harmless(runtime: Runtime, store_url: str) -> None:
    again = open_store(store_url)
    try:
        assert set(Base.metadata.tables) <= set(inspect(again.engine).get_table_names())
    finally:
        again.close()
