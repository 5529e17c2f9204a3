"""End-to-end tests: Debian's Chromium driven by Playwright, against a real ``golive server``
process.

    with golive_server(home) as server:                  # server.url, server.admin_password
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_context(base_url=server.url).new_page()
            log_in(page, "dev", password)

The server is the command a user runs (``golive server --host 127.0.0.1 --port P``) with
its own ``GOLIVE_HOME`` (a SQLite store) and the inline worker, so deployments run in it.
Its output goes to ``server.log`` in the home (not a pipe: a pipe nobody reads fills up and
blocks the server); :meth:`GoliveServer.log_tail` shows it when a test fails.

Chromium is the system's (``/usr/bin/chromium``, Debian's package, with ``fonts-noto-cjk``
for Chinese): Playwright never downloads a browser here.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from golive.testing.server import free_port

if TYPE_CHECKING:  # Playwright is a test dependency: imported by the tests, not here
    from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking"]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
LOG_TAIL_LINES = 60
ADMIN_PASSWORD = re.compile(r"log in as admin with the password (\S+) ")


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless (no download: ``playwright install`` is never run)."""
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium and "
                           "fonts-noto-cjk (scripts/apt-packages.txt)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def golive_program() -> list[str]:
    """The ``golive`` command of this environment (beside its Python)."""
    beside = Path(sys.executable).parent / "golive"
    if beside.is_file():
        return [str(beside)]
    return [sys.executable, "-c", "from golive.cli.main import run; run()"]


def golive_environment(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any GOLIVE_* setting of the caller's, working on
    ``home`` (a SQLite store there) with the inline worker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLIVE_")}
    env.update({"GOLIVE_HOME": str(home), "GOLIVE_TASKS": "inline", **(extra or {})})
    return env


def golive_command(home: Path, *args: str, stdin: str = "",
                   env: Mapping[str, str] | None = None) -> str:
    """Run ``golive ARGS`` on ``home`` as a user would; its output. Raises with the output
    when it fails."""
    done = subprocess.run([*golive_program(), *args], env=golive_environment(home, env),
                          input=stdin, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"golive {' '.join(args)} exited with {done.returncode}:\n"
                           f"{done.stdout}\n{done.stderr}")
    return done.stdout


@dataclass
class GoliveServer:
    """A running ``golive server`` process."""

    url: str
    port: int
    home: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    admin_password: str = ""
    """Printed at the first start (empty when the admin already had a password)."""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def golive_server(home: Path, env: Mapping[str, str] | None = None,
                  attempts: int = 3) -> Iterator[GoliveServer]:
    """``golive server`` on a free port of 127.0.0.1, serving ``home``; stopped (SIGTERM,
    then SIGKILL) when the block ends, even if it raised."""
    server = _start(home, env, attempts)
    try:
        yield server
    finally:
        _stop(server.process)


def _start(home: Path, env: Mapping[str, str] | None, attempts: int) -> GoliveServer:
    home.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = home / "server.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [*golive_program(), "server", "--host", "127.0.0.1", "--port", str(port)],
                env=golive_environment(home, {"GOLIVE_PUBLIC_URL": url, **(env or {})}),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        server = GoliveServer(url, port, home, process, log_path)
        try:
            _wait_healthy(server)
        except BaseException:
            _stop(process)
            # another process took the port between the probe and the bind: try another
            if attempt < attempts and "address already in use" in server.log_tail().lower():
                continue
            raise
        found = ADMIN_PASSWORD.search(log_path.read_text(errors="replace"))
        server.admin_password = found.group(1) if found else ""
        return server
    raise AssertionError("unreachable")


def _wait_healthy(server: GoliveServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        code = server.process.poll()
        if code is not None:
            raise RuntimeError(f"golive server exited with {code} at start:\n"
                               f"{server.log_tail()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"golive server did not answer within {START_TIMEOUT:.0f}s:\n"
                               f"{server.log_tail()}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn shuts down gracefully), SIGKILL if it lingers; by pid only."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


# -- a person at the browser ----------------------------------------------------------------

def log_in(page: Page, user: str, password: str) -> None:
    """Log in through the login form (the page's context has the server as base_url)."""
    page.goto("/login")
    page.fill("#field-user", user)
    page.fill("#field-password", password)
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_url(lambda url: "/login" not in url)


def log_out(page: Page) -> None:
    page.locator("form[action='/logout'] button").click()
    page.wait_for_url("**/login*")


def overflows_horizontally(page: Page) -> bool:
    """Whether the page is wider than its viewport (a phone would scroll sideways)."""
    return bool(page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"))


def fully_visible(page: Page, selector: str) -> bool:
    """Whether the element lies within the viewport's width (no sideways scrolling needed
    to reach it)."""
    box = page.locator(selector).first.bounding_box()
    width = page.evaluate("document.documentElement.clientWidth")
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
