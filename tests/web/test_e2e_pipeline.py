"""In a real Chromium against a real ``golive server``: an order from the new order form
through test, staging and prod, clicking like the people who do it; a rejection with a
reason and an iterative redeploy after a fix on the branch.

The world is shared with the other tests of the process (``deployed``): each order here
inserts its own coupon code, so that what its SQL did is counted apart from the others'.
"""

from __future__ import annotations

import re

from e2e_world import BRANCH, E2E, POST_DEPLOY_LINE, OpenPage
from playwright.sync_api import Page, expect

from golive.testing.browser import log_in, log_out

DEPLOY_TIMEOUT = 90_000  # ms: build, pack and send over SSH on a busy 2-core machine
BAD_SQL = "DELETE FROM coupons;\n"


def coupon_sql(code: str) -> str:
    return f"INSERT INTO coupons (code) VALUES ('{code}');\n"


def coupons(world: E2E, stage: str, code: str) -> int:
    """How many times the order's SQL inserted ``code`` on the stage's database."""
    return int(world.rows(stage, f"SELECT count(*) FROM coupons WHERE code = '{code}'")[0][0])


def field(name: str) -> str:
    """The selector of a form field by its name (ids hold dots: ``field-branch.web``)."""
    return f"[id='field-{name}']"


def state_is(page: Page, state: str, timeout: float = 15_000) -> None:
    expect(page.locator("#order-state")).to_have_attribute("data-state", state,
                                                           timeout=timeout)


def deploy_after_the_plan(page: Page, action: str, stage: str, statements: str,
                          shows: str = "") -> None:
    """Click the deploy (or release) button, read the plan (each SQL statement's
    ``statements``: run or skip; ``shows``: a text it has), confirm; back on the order."""
    page.locator(f"a[data-action='{action}'][data-kind='iterative']").click()
    page.wait_for_url(re.compile(rf"/orders/\d+/(deploy|release)\?stage={stage}"))
    plan = page.locator("#plan")
    expect(plan.locator(".plan-service[data-name='web']")).to_have_attribute(
        "data-action", "deploy")
    expect(plan.locator("table.plan-sql tbody tr")).to_have_count(len(statements.split()))
    assert [row.get_attribute("data-action") for row in
            plan.locator("table.plan-sql tbody tr").all()] == statements.split()
    if shows:
        expect(plan).to_contain_text(shows)
    page.locator(f"#deploy-confirm button[data-action='{action}']").click()
    page.wait_for_url(re.compile(r"/orders/\d+$"))


def test_an_order_goes_from_the_form_to_done(deployed: E2E, open_page: OpenPage) -> None:
    sql = coupon_sql("FORM-1") + coupon_sql("FORM-2")
    page = open_page(deployed, "dev")

    # dev files the order with SQL; the review rules speak while the SQL is typed
    page.locator(".main-nav a[href='/orders/new']").click()
    form = page.locator("form#new-order")
    form.locator("input[name=service][value=web]").check()
    page.fill(field("branch.web"), BRANCH)
    expect(page.locator(f"datalist#branches-web option[value='{BRANCH}']")).to_have_count(1)
    page.fill(field("title"), "Coupons")
    page.locator(field("sql.web")).press_sequentially(BAD_SQL, delay=5)
    expect(page.locator("#findings-web .finding.bad")).to_have_count(1)
    page.fill(field("sql.web"), "")
    page.locator(field("sql.web")).press_sequentially(sql, delay=2)
    expect(page.locator("#findings-web .clean")).to_be_visible()
    expect(page.locator("#findings-web .finding")).to_have_count(0)
    form.locator("button[data-action='order.submit']").click()
    page.wait_for_url(re.compile(r"/orders/\d+$"))
    number = int(page.url.rsplit("/", 1)[1])
    state_is(page, "submitted")

    # deploy to test: the plan first, then the live log fills while it runs (the host
    # takes 3 s more meanwhile) and the page shows the end by itself
    deployed.slow_deploys("test")
    deploy_after_the_plan(page, "order.deploy", "test", "run run")
    log = page.locator("#live-log")
    expect(log).to_have_attribute("data-live", "yes")
    expect(log).to_contain_text(POST_DEPLOY_LINE, timeout=DEPLOY_TIMEOUT)
    expect(page.locator("#order-state")).to_have_attribute("data-state", "test:deploying")
    deployed.slow_deploys("test", slow=False)
    state_is(page, "test:deployed", DEPLOY_TIMEOUT)
    expect(log).to_contain_text(f"iterative deployment of order {number} on test succeeded")
    expect(page.locator("progress[data-progress='host:test-1']")).to_have_class("ok")
    log_out(page)

    # tess passes it on test
    log_in(page, "tess", deployed.passwords["tess"])
    page.goto(f"/orders/{number}")
    page.locator("button[data-action='order.pass']").click()
    state_is(page, "test:passed")
    log_out(page)

    # rita deploys to staging, tess passes, rita releases
    log_in(page, "rita", deployed.passwords["rita"])
    page.goto(f"/orders/{number}")
    deploy_after_the_plan(page, "order.deploy", "staging", "run run")
    state_is(page, "staging:deployed", DEPLOY_TIMEOUT)
    log_out(page)
    log_in(page, "tess", deployed.passwords["tess"])
    page.goto(f"/orders/{number}")
    page.locator("button[data-action='order.pass']").click()
    state_is(page, "staging:passed")
    log_out(page)
    log_in(page, "rita", deployed.passwords["rita"])
    page.goto(f"/orders/{number}")
    deploy_after_the_plan(page, "order.release", "prod", "run run")
    state_is(page, "done", DEPLOY_TIMEOUT)
    expect(page.locator("ol.pipeline li")).to_have_count(3)
    expect(page.locator("#history")).to_contain_text("tess")

    # each environment's database ran the SQL once; prod serves the branch
    for stage in ("test", "staging", "prod"):
        assert (coupons(deployed, stage, "FORM-1"), coupons(deployed, stage, "FORM-2")) == (1, 1), \
            deployed.fail_message()
    assert deployed.serving("prod", "coupons.html").startswith("<p>coupons")


def test_a_rejected_order_is_fixed_and_redeployed(deployed: E2E,
                                                   open_page: OpenPage) -> None:
    number = deployed.file_order(coupon_sql("REJECTED-1"), title="To be rejected")
    deployed.deploy(number)
    page = open_page(deployed, "tess")
    page.goto(f"/orders/{number}")
    state_is(page, "test:deployed")

    # a rejection needs a reason: the error is shown beside the field, nothing changes
    reject = page.locator("form#reject-form")
    reject.locator("button[data-action='order.reject']").click()
    expect(page.locator("form#reject-form #error-reason")).to_be_visible()
    expect(page.locator(field("reason"))).to_have_attribute("aria-invalid", "true")
    state_is(page, "test:deployed")
    page.fill(field("reason"), "the coupon page is empty")
    page.locator("form#reject-form button[data-action='order.reject']").click()
    state_is(page, "test:rejected")
    expect(page.locator("#history")).to_contain_text("the coupon page is empty")
    log_out(page)

    # dev fixes the branch and redeploys: only the changed service moves, no SQL again
    fixed = f"<p>coupons fixed for order {number}</p>\n"
    head = deployed.change_branch({"src/coupons.html": fixed})
    log_in(page, "dev", deployed.passwords["dev"])
    page.goto(f"/orders/{number}")
    expect(page.locator("a[data-action='order.deploy'][data-kind='full']")).to_be_visible()
    deploy_after_the_plan(page, "order.deploy", "test", "skip", shows=head[:10])
    state_is(page, "test:deployed", DEPLOY_TIMEOUT)
    assert deployed.serving("test", "coupons.html") == fixed
    assert coupons(deployed, "test", "REJECTED-1") == 1  # the SQL ran once, not again


def test_refused_sql_waits_for_an_owner_and_a_rollback_picks_a_kept_release(
        deployed: E2E, open_page: OpenPage) -> None:
    number = deployed.file_order("DROP TABLE IF EXISTS old_promos;\n", title="Drop old promos")
    dev = open_page(deployed, "dev")
    dev.goto(f"/orders/{number}")
    expect(dev.locator(".blocked[data-blocked='sql_approval']")).to_be_visible()
    assert dev.locator("a[data-action='order.deploy']").count() == 0
    assert dev.locator("[data-action='order.approve_sql']").count() == 0

    olga = open_page(deployed, "olga")  # an owner approves the refused statement
    olga.goto(f"/orders/{number}")
    olga.locator("[data-action='order.approve_sql']").click()
    expect(olga.locator(".flash.ok")).to_be_visible()

    dev.reload()
    deploy_after_the_plan(dev, "order.deploy", "test", "run")
    state_is(dev, "test:deployed", DEPLOY_TIMEOUT)
    serving = deployed.current_release("test")

    # rita rolls the stage back to a release it keeps, picked from the list
    rita = open_page(deployed, "rita")
    rita.goto(f"/orders/{number}")
    rita.locator("details#rollback summary").click()
    choices = rita.locator("#rollback-form select[name=to] option").all()
    kept = [option.get_attribute("value") for option in choices]
    assert kept[0] == "" and kept[1] == serving and len(kept) >= 3, kept
    rita.locator("#rollback-form select[name=to]").select_option(kept[2])
    rita.locator("#rollback-form [data-action='order.rollback']").click()
    state_is(rita, "test:rolled_back", DEPLOY_TIMEOUT)
    assert deployed.current_release("test") == kept[2]
