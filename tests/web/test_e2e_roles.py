"""In a real Chromium: each role is offered only what it may do, a refused action sent
without its button is refused by the server, and a phone can pass or reject."""

from __future__ import annotations

import re

from e2e_world import E2E, PHONE, SCREENSHOTS, OpenPage
from playwright.sync_api import Page, expect

from golive.testing.browser import fully_visible, overflows_horizontally

ACTION = "[data-action='{}']"


def offered(page: Page, operation: str) -> int:
    return page.locator(ACTION.format(operation)).count()


def post_without_button(page: Page, path: str, fields: dict[str, str]) -> None:
    """Submit a form the page does not have (as a hand-made request would), with the
    page's own CSRF token, and wait for the answer to load."""
    token = page.locator("input[name=csrf_token]").first.input_value()
    with page.expect_navigation():
        page.evaluate("""([path, fields]) => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = path;
            for (const [name, value] of Object.entries(fields)) {
                const input = document.createElement("input");
                input.type = "hidden"; input.name = name; input.value = value;
                form.appendChild(input);
            }
            document.body.appendChild(form);
            form.submit();
        }""", [path, {"csrf_token": token, **fields}])


def test_each_role_sees_only_the_actions_it_may_take(deployed: E2E,
                                                      open_page: OpenPage) -> None:
    number = deployed.order  # deployed on test
    tess = open_page(deployed, "tess")
    tess.goto(f"/orders/{number}")
    expect(tess.locator("#order-state")).to_have_attribute("data-state", "test:deployed")
    assert offered(tess, "order.pass") == 1 and offered(tess, "order.reject") == 1
    assert offered(tess, "order.deploy") == 0 and offered(tess, "order.release") == 0

    dev = open_page(deployed, "dev")
    dev.goto(f"/orders/{number}")
    assert offered(dev, "order.deploy") >= 1  # a redeploy on test is the developer's
    for refused in ("order.pass", "order.reject", "order.release", "order.rollback"):
        assert offered(dev, refused) == 0, refused

    # the pass button dev does not have, sent by hand: refused, nothing moves
    post_without_button(dev, f"/orders/{number}/pass", {})
    expect(dev.locator(".flash.bad")).to_contain_text("tester")
    expect(dev.locator("#order-state")).to_have_attribute("data-state", "test:deployed")
    assert deployed.state(number) == "test:deployed"

    # an owner's form sent by a developer: the 403 page
    dev.goto("/projects/shop")
    with dev.expect_response(re.compile(r"/projects/shop/members$")) as answer:
        post_without_button(dev, "/projects/shop/members",
                            {"user": "dev", "roles": "owner"})
    assert answer.value.status == 403
    expect(dev.locator("h1")).to_have_text("Not allowed")
    members = deployed.api("olga", "GET", "/projects/shop/members")
    assert [m["roles"] for m in members if m["user"] == "dev"] == [["developer"]]


def test_a_phone_can_pass_or_reject(deployed: E2E, open_page: OpenPage) -> None:
    number = deployed.file_order(title="From the phone")
    deployed.deploy(number)
    page = open_page(deployed, "tess", viewport=PHONE)
    page.goto(f"/orders/{number}")
    assert not overflows_horizontally(page)
    for selector in ("button[data-action='order.pass']", "form#reject-form textarea",
                     "button[data-action='order.reject']", "#order-state"):
        expect(page.locator(selector)).to_be_visible()
        assert fully_visible(page, selector), selector
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "order-phone.en.png"), full_page=True)
    page.locator("button[data-action='order.pass']").click()
    expect(page.locator("#order-state")).to_have_attribute("data-state", "test:passed")
    assert not overflows_horizontally(page)
