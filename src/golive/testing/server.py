"""A golive server for tests: the real application served by uvicorn on 127.0.0.1.

    with serve(create_app(runtime=runtime)) as server:      # server.url
        token = api_token(runtime, "alice")
        httpx.get(f"{server.url}/api/v1/orders", headers=bearer(token))
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

from golive.services import accounts
from golive.services.runtime import Runtime
from golive.store.models import User


@dataclass(frozen=True)
class LiveServer:
    url: str
    port: int


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(app: FastAPI, timeout: float = 30.0) -> Iterator[LiveServer]:
    """Run ``app`` (its lifespan too) on a free port in a thread until the block ends."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="golive-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", port)
    finally:
        server.should_exit = True
        thread.join(timeout)


def api_token(runtime: Runtime, user_name: str, days: int | None = None) -> str:
    """A new API token for ``user_name`` (created, as an admin would, when missing)."""
    with runtime.store.session() as session:
        user = session.query(User).filter_by(name=user_name).one_or_none()
        if user is None:
            user = User(name=user_name, display_name=user_name)
            session.add(user)
            session.flush()
        secret = accounts.create_token(session, user, f"test {user_name}", days).secret
        session.commit()
    return secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_error(response: Any, status: int) -> dict[str, Any]:
    """The ``error`` object of an API answer, after checking its status."""
    assert response.status_code == status, response.text
    found: dict[str, Any] = response.json()["error"]
    return found
