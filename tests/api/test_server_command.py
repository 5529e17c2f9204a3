"""`golive server` as a user starts it: a process serving the API on 127.0.0.1, printing
the first admin's generated password once, stopping cleanly on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from golive.testing.server import free_port

GOLIVE = Path(sys.executable).parent / "golive"


def start(home: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "GOLIVE_HOME": str(home)}
    return subprocess.Popen([str(GOLIVE), "server", "--port", str(port)], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_healthy(url: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("golive server did not become healthy")


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    # uvicorn shuts down gracefully, then re-raises the signal to exit with it
    assert process.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err, err
    return err


def test_golive_server_serves_and_prints_the_admin_password_once(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(tmp_path / "home", port)
    try:
        wait_healthy(url, process)
        assert httpx.get(f"{url}/api/v1/orders").status_code == 401
        schema = httpx.get(f"{url}/api/v1/openapi.json").json()
        assert "/api/v1/orders/{number}" in schema["paths"]
    finally:
        err = stop(process)
    found = re.search(r"log in as admin with the password (\S+) ", err)
    assert found, err
    password = found.group(1)

    process = start(tmp_path / "home", port)  # the second start prints no password
    try:
        wait_healthy(url, process)
        login = httpx.post(f"{url}/api/v1/login", json={"user": "admin", "password": password})
        assert login.status_code == 200, login.text
        assert "golive_session" in login.cookies
    finally:
        err = stop(process)
    assert "password" not in err
