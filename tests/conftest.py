"""Shared fixtures: a private GOLIVE_HOME, stores on SQLite, PostgreSQL and MariaDB, and
real OpenSSH servers on 127.0.0.1 (see tests/README.md)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from golive.api.app import create_app
from golive.services.runtime import Runtime, open_runtime
from golive.settings import get_settings
from golive.testing.databases import BACKENDS, scratch_database
from golive.testing.server import LiveServer, serve
from golive.testing.sshd import SshServer, SshServerFactory, ssh_server


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


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    """A running OpenSSH server on 127.0.0.1 with three test users ("hosts"), key login.

    ``sshd.users[i].name`` / ``.home`` (on a tmpfs), ``sshd.port``, ``sshd.client_key``,
    ``sshd.host_public_key``; stop()/start()/kill()/rotate_host_key()/small_disk().
    Everything (sshd, users, mounts) is removed at teardown.
    """
    with ssh_server(tmp_path / "sshd", hosts=3) as server:
        yield server


@pytest.fixture
def sshd_factory(tmp_path: Path) -> Iterator[SshServerFactory]:
    """Make servers on demand: ``sshd_factory(hosts=2, password="pw")``; all removed at
    teardown."""
    numbers = itertools.count()
    with ExitStack() as stack:

        def make(hosts: int = 1, *, password: str | None = None,
                 tmpfs_size: str = "512m") -> SshServer:
            workdir = tmp_path / f"sshd-{next(numbers)}"
            return stack.enter_context(
                ssh_server(workdir, hosts, password=password, tmpfs_size=tmpfs_size))

        yield make


@pytest.fixture
def announced() -> list[str]:
    """What the server printed at start (the first admin's password)."""
    return []


@pytest.fixture
def api(sqlite_runtime: Runtime, announced: list[str]) -> Iterator[TestClient]:
    """A client of the application (lifespan run: the inline worker and the sender too)."""
    with TestClient(create_app(runtime=sqlite_runtime, announce=announced.append)) as client:
        yield client


@pytest.fixture
def live(sqlite_runtime: Runtime, announced: list[str]) -> Iterator[LiveServer]:
    """The application served over HTTP on 127.0.0.1."""
    with serve(create_app(runtime=sqlite_runtime, announce=announced.append)) as server:
        yield server
