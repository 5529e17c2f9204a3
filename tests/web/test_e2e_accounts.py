"""In a real Chromium: logging in and out, the language of the pages."""

from __future__ import annotations

from e2e_world import E2E, OpenPage
from playwright.sync_api import expect

from golive.testing.browser import log_in, log_out


def test_a_wrong_password_is_refused_and_the_right_one_logs_in(deployed: E2E,
                                                                open_page: OpenPage) -> None:
    page = open_page(deployed)
    page.goto("/orders")
    assert "/login" in page.url
    page.fill("#field-user", "dev")
    page.fill("#field-password", "not the password")
    page.locator("form[action='/login'] button[type=submit]").click()
    assert page.locator(".flash.bad").inner_text() == "The user name or the password is wrong."
    page.fill("#field-password", deployed.passwords["dev"])
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_url("**/orders")
    assert page.locator("h1").inner_text() == "Orders"
    assert page.locator(f"a[href='/orders/{deployed.order}']").first.is_visible()
    log_out(page)
    page.goto("/orders")
    assert "/login" in page.url


def test_the_browser_language_then_the_switch_choose_the_pages_language(
        deployed: E2E, open_page: OpenPage) -> None:
    try:
        see_the_language_chosen(deployed, open_page)
    finally:  # the admin's pages follow the browser again, for the other tests
        deployed.api("admin", "PATCH", "/users/admin", json={"language": ""})


def see_the_language_chosen(deployed: E2E, open_page: OpenPage) -> None:
    page = open_page(deployed, language="zh_CN")  # Accept-Language: zh-CN
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("form[action='/login'] button[type=submit]")).to_have_text("登录")
    log_in(page, "admin", deployed.passwords["admin"])
    expect(page.locator("h1")).to_have_text("工作台")
    page.goto(f"/orders/{deployed.order}")
    expect(page.locator("button[data-action='order.pass']")).to_have_text("通过")
    assert page.locator(".main-nav").inner_text().split()[:3] == ["工作台", "上线单", "新建上线单"]

    page.locator(".language-switch button[value='en']").click()  # the header's switch
    expect(page.locator("button[data-action='order.pass']")).to_have_text("Pass")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert page.url.endswith(f"/orders/{deployed.order}")  # back on the same page

    # the choice is kept in the profile: another browser asking for Chinese gets English
    other = open_page(deployed, "admin", language="zh_CN")
    expect(other.locator("h1")).to_have_text("Dashboard")
    other.locator(".language-switch button[value='zh_CN']").click()
    expect(other.locator("h1")).to_have_text("工作台")
