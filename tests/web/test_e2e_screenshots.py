"""Screenshots of each main page in both languages, taken in a real Chromium and written
to docs/screenshots/<page>.<en|zh_CN>.png on every run (README.md links them).

Each page is opened by the person who uses it, in a browser asking for the language
(Accept-Language); the test checks the page is in that language before taking it.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from e2e_world import BRANCH, E2E, SCREENSHOTS, OpenPage
from playwright.sync_api import Page, expect

DASHBOARD = {"en": "Dashboard", "zh_CN": "工作台"}
LANG = {"en": "en", "zh_CN": "zh-CN"}
TEST_PATHS = re.compile(re.escape(str(Path(tempfile.gettempdir()).resolve()) + "/"))
"""The test world's files (repositories, keys, SQLite databases) live in this machine's
temporary folder: covered in the pictures, which go into the repository."""


def shoot(page: Page, name: str, language: str) -> Path:
    expect(page.locator("html")).to_have_attribute("lang", LANG[language])
    path = SCREENSHOTS / f"{name}.{language}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled",
                    mask=[page.get_by_text(TEST_PATHS)], mask_color="#d9e2ec")
    return path


def new_order_filled(page: Page) -> None:
    """The new order form with a service, its branch and SQL the review rules flag."""
    page.goto("/orders/new")
    page.locator("form#new-order input[name=service][value=web]").check()
    page.fill("[id='field-branch.web']", BRANCH)
    page.fill("[id='field-title']", "Coupons for spring")
    page.locator("[id='field-sql.web']").press_sequentially(
        "INSERT INTO coupons (code) VALUES ('SPRING');\nDELETE FROM coupons;\n", delay=1)
    expect(page.locator("#findings-web .finding.bad")).to_have_count(1)


@pytest.mark.parametrize("language", ["en", "zh_CN"])
def test_screenshots_of_the_main_pages(deployed: E2E, open_page: OpenPage,
                                       language: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []

    visitor = open_page(deployed, language=language)
    visitor.goto("/login")
    taken.append(shoot(visitor, "login", language))

    tess = open_page(deployed, "tess", language=language)
    expect(tess.locator("h1")).to_have_text(DASHBOARD[language])
    expect(tess.locator(f"#waiting li[data-id='{deployed.order}']")).to_be_visible()
    taken.append(shoot(tess, "dashboard", language))
    tess.goto("/orders")
    taken.append(shoot(tess, "orders", language))
    tess.goto(f"/orders/{deployed.order}")
    expect(tess.locator("#live-log")).to_contain_text("succeeded")
    expect(tess.locator("ol.pipeline li")).to_have_count(3)
    taken.append(shoot(tess, "order", language))

    dev = open_page(deployed, "dev", language=language)
    new_order_filled(dev)
    taken.append(shoot(dev, "new-order", language))
    dev.goto("/profile")
    taken.append(shoot(dev, "profile", language))
    dev.goto("/tokens")
    taken.append(shoot(dev, "tokens", language))

    olga = open_page(deployed, "olga", language=language)
    olga.goto("/projects/shop")
    taken.append(shoot(olga, "project-settings", language))

    admin = open_page(deployed, "admin", language=language)
    admin.goto("/admin/users")
    expect(admin.locator("body")).to_contain_text("tess")
    taken.append(shoot(admin, "admin-users", language))

    for path in taken:
        assert path.stat().st_size > 10_000, path  # a page, not an empty picture
