"""Scratch databases on the PostgreSQL and MariaDB servers, made and dropped per use.

The servers' admin URLs come from GOLIVE_TEST_POSTGRES_URL and
GOLIVE_TEST_MARIADB_URL, defaulting to the loopback servers with trust auth.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MARIADB_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
BACKENDS = ("sqlite", "postgresql", "mariadb")


def admin_url(backend: str) -> str:
    if backend == "postgresql":
        return os.environ.get("GOLIVE_TEST_POSTGRES_URL", POSTGRES_ADMIN)
    if backend == "mariadb":
        return os.environ.get("GOLIVE_TEST_MARIADB_URL", MARIADB_ADMIN)
    raise ValueError(f"no admin URL for {backend}")


@contextmanager
def scratch_database(backend: str, directory: Path) -> Iterator[str]:
    """The URL of a new, empty database on ``backend``; dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'scratch-{uuid.uuid4().hex[:8]}.db'}"
        return
    name = f"golive_t_{uuid.uuid4().hex[:12]}"
    admin = make_url(admin_url(backend))
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if backend == "mariadb":
                conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
            else:
                conn.execute(text(f"CREATE DATABASE {name}"))
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            if backend == "postgresql":
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        engine.dispose()
