"""Shared fixtures: a private GOLIVE_HOME, and stores on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from golive.services.runtime import Runtime, open_runtime
from golive.settings import get_settings
from golive.testing.databases import BACKENDS, scratch_database


@pytest.fixture(autouse=True)
def golive_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own GOLIVE_HOME and none of the caller's GOLIVE_* settings."""
    home = tmp_path / "golive-home"
    for name in ("GOLIVE_DATABASE_URL", "GOLIVE_SECRET_KEY", "GOLIVE_USER", "GOLIVE_URL",
                 "GOLIVE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOLIVE_HOME", str(home))
    return home


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store database on each of the three backends."""
    with scratch_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def runtime(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """An open runtime on a fresh store of each backend (migrations applied)."""
    monkeypatch.setenv("GOLIVE_DATABASE_URL", store_url)
    monkeypatch.setenv("GOLIVE_SECRET_KEY", Fernet.generate_key().decode())
    opened = open_runtime(get_settings())
    yield opened
    opened.close()


@pytest.fixture
def sqlite_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """An open runtime on the default store (a SQLite file in GOLIVE_HOME)."""
    opened = open_runtime(get_settings())
    yield opened
    opened.close()
