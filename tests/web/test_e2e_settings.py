"""In a real Chromium: a site admin adds a person and checks a host over SSH, an owner
makes the person a tester (errors beside the fields first), and the person's pages
change with the role; an API token created on its page works against the API."""

from __future__ import annotations

import httpx
from e2e_world import E2E, OpenPage
from playwright.sync_api import expect

from golive.testing.server import bearer


def test_a_new_person_becomes_a_tester_through_the_settings(deployed: E2E,
                                                             open_page: OpenPage) -> None:
    admin = open_page(deployed, "admin")
    admin.goto("/admin/users")
    form = admin.locator("form#new-user")
    form.locator("[id='field-name']").fill("nina x")  # not a valid name
    form.locator("button[type=submit]").click()
    expect(admin.locator("form#new-user #error-name")).to_be_visible()
    admin.locator("form#new-user [id='field-name']").fill("nina")
    admin.locator("form#new-user [id='field-display_name']").fill("Nina")
    admin.locator("form#new-user [id='field-password']").fill("nina-password-123")
    admin.locator("form#new-user button[type=submit]").click()
    expect(admin.locator(".flash.ok")).to_contain_text("nina")
    expect(admin.locator("table.users tr[data-name='nina']")).to_be_visible()

    # the hosts: the key pinned by the deploy, and a check of another host over SSH
    admin.goto("/projects/shop")
    fingerprint = deployed.sshd.host_key_fingerprint
    expect(admin.locator("table.hosts tr[data-name='test-1'] .fingerprint")).to_contain_text(
        fingerprint)
    admin.locator("table.hosts tr[data-name='stg-1'] [data-action='host.check']").click()
    expect(admin.locator(".flash.ok")).to_contain_text("stg-1")
    expect(admin.locator(".flash.ok")).to_contain_text(fingerprint)

    # the owner adds nina: no role chosen is an error beside the roles, then tester
    olga = open_page(deployed, "olga")
    olga.goto("/projects/shop")
    assert olga.locator("[data-action='host.check']").count() == 0  # a site admin's
    adding = olga.locator("form#add-member")
    adding.locator("[id='field-user']").fill("nina")
    for box in adding.locator("input[name=roles]").all():
        box.uncheck()
    adding.locator("[data-action='member.add']").click()
    expect(olga.locator("form#add-member #error-roles")).to_be_visible()
    adding = olga.locator("form#add-member")
    adding.locator("[id='field-user']").fill("nina")
    for box in adding.locator("input[name=roles]").all():
        box.uncheck()
    adding.locator("input[name=roles][value=tester]").check()
    adding.locator("[data-action='member.add']").click()
    expect(olga.locator("table.members tr[data-name='nina']")).to_be_visible()
    expect(olga.locator("#roles-nina input[value=tester]")).to_be_checked()

    # nina logs in and may pass the order being tested
    deployed.passwords["nina"] = "nina-password-123"
    nina = open_page(deployed, "nina")
    expect(nina.locator(f"#waiting li[data-id='{deployed.order}']")).to_be_visible()
    nina.goto(f"/orders/{deployed.order}")
    expect(nina.locator("[data-action='order.pass']")).to_be_visible()
    assert nina.locator("a[data-action='order.deploy']").count() == 0


def test_a_token_made_on_its_page_works_against_the_api(deployed: E2E,
                                                        open_page: OpenPage) -> None:
    page = open_page(deployed, "dev")
    page.locator("header a.me").click()  # the profile, then its tokens
    page.goto("/tokens")
    page.locator("form#new-token [id='field-name']").fill("laptop")
    page.locator("form#new-token button[type=submit]").click()
    secret = page.locator("#token-secret").inner_text().strip()
    orders = httpx.get(f"{deployed.url}/api/v1/orders", headers=bearer(secret), timeout=30)
    assert orders.status_code == 200 and any(o["id"] == deployed.order for o in orders.json())

    page.goto("/tokens")  # shown once: not on the page again
    assert page.locator("#token-secret").count() == 0
    page.locator("table.tokens tr[data-name='laptop'] [data-action='token.revoke']").click()
    expect(page.locator("table.tokens tr[data-name='laptop']")).to_contain_text("revoked")
    refused = httpx.get(f"{deployed.url}/api/v1/orders", headers=bearer(secret), timeout=30)
    assert refused.status_code == 401
