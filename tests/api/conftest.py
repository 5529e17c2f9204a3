"""Fixtures of the server tests: the application on the default SQLite store, driven
in-process (``api``) or over HTTP by uvicorn on 127.0.0.1 (``live``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from golive.api.app import create_app
from golive.services.runtime import Runtime
from golive.testing.server import LiveServer, serve


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
