"""Fixtures of the SQL tests: a scratch target database on MariaDB and on PostgreSQL,
and a ``SqlWorld`` (project shop, local hosts, a SQLite store) deploying to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sql_world import BACKENDS, SqlWorld

from golive.services.runtime import Runtime
from golive.testing.databases import scratch_database


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def target_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty database on ``backend`` (dropped afterwards)."""
    with scratch_database(backend, tmp_path) as url:
        yield url


@pytest.fixture
def world(tmp_path: Path, sqlite_runtime: Runtime, backend: str, target_url: str) -> SqlWorld:
    """Project shop with service ``orders``; every stage's database is ``shop-test``, the
    scratch database (call ``world.configure(...)`` again to change that)."""
    made = SqlWorld(tmp_path, sqlite_runtime, backend, target_url)
    made.configure()
    return made
