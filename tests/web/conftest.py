"""Fixtures of the end-to-end tests (tests/web/test_e2e_*.py): Debian's Chromium driven by
Playwright against a real ``golive server`` process deploying over the test OpenSSH server
(the world: tests/web/e2e_world.py).

* ``browser`` — one Chromium per test module (and pytest-xdist worker): not longer, since
  while Playwright's sync API is started, its event loop counts as running in this
  thread and any ``asyncio.run`` of another module's test would fail;
* ``deployed`` — the world, shared by the tests of a test process (building one takes
  seconds), with order ``deployed.order`` filed by dev and deployed on test, which no test
  moves. A test that changes things works on what it made: its own orders (whose SQL
  inserts coupon codes of their own, counted apart), a new user; what it must change of
  the others' (the admin's language) it sets back;
* ``open_page(world, user="dev", language="en", viewport=DESKTOP)`` — a page in a new
  browser context (own cookies, Accept-Language of the language), logged in through the
  login form the first time, with that login's cookies afterwards (``logins``); the
  contexts are closed after the test.

The other tests of this folder (TestClient) use the root conftest's ``api`` fixture:
nothing here is autouse.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_world import ACCEPT_LANGUAGE, DESKTOP, E2E, OpenPage, e2e_world
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    StorageState,
    ViewportSize,
    sync_playwright,
)

from golive.testing.browser import launch_chromium, log_in
from golive.testing.sshd import ssh_server


@pytest.fixture(scope="session")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    root = tmp_path_factory.mktemp("e2e")
    with ssh_server(root / "sshd", hosts=3) as sshd, e2e_world(root / "world", sshd) as world:
        world.order = world.file_order()
        world.deploy(world.order)
        yield world


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def logins() -> dict[tuple[str, str], StorageState]:
    """The cookies of a login per (server, user), so that the next page of the same person
    does not go through the form again (each test process keeps its own)."""
    return {}


@pytest.fixture
def open_page(browser: Browser, logins: dict[tuple[str, str], StorageState]
              ) -> Iterator[OpenPage]:
    contexts: list[BrowserContext] = []

    def open_one(world: E2E, user: str = "", language: str = "en",
                 viewport: ViewportSize | None = None) -> Page:
        key = (str(world.home), user)
        known = logins.get(key) if user else None
        context = browser.new_context(base_url=world.url, locale=ACCEPT_LANGUAGE[language],
                                      viewport=viewport or DESKTOP, storage_state=known)
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        if known is not None:
            page.goto("/")
        if user and (known is None or "/login" in page.url):  # new, or logged out since
            log_in(page, user, world.passwords[user])
            logins[key] = context.storage_state()
        return page

    yield open_one
    for context in contexts:
        context.close()
