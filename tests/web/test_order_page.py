"""The order page through the real application (TestClient, SQLite store, local hosts):
the buttons each role gets in each state — and not the others; pass and reject through
the forms (a reason is required, the error beside the field); a deploy shown as its plan
then confirmed and carried out; rollback to a kept release picked from a select; SQL
approval, an unknown statement resolved, a paused deployment resumed; both languages.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from order_world import PATH, ZH, World, actions_of, make_world
from sqlalchemy import select

from golive.api.schemas.deployments import ENDED
from golive.domain.jobs import JobSpec
from golive.services.orders import get_order
from golive.services.runtime import Runtime
from golive.store.models import Deployment, Order, OrderHistory, SqlExecution
from golive.testing.web import csrf_of
from golive.testing.world import act, current_target, deploy, rows

REFUSED_SQL = "DROP TABLE carts;"


@pytest.fixture
def world(tmp_path: Path, sqlite_runtime: Runtime, api: TestClient) -> Iterator[World]:
    yield make_world(tmp_path, sqlite_runtime, api)


def state_of(world: World, number: int) -> str:
    return rows(world.runtime, Order, Order.id == number)[0].state


def post(client: TestClient, url: str, page: str, **data: str) -> object:
    return client.post(url, data={"csrf_token": csrf_of(page), **data},
                       follow_redirects=False)


BUTTONS = [
    # state, user, the buttons (data-action) the page shows them — exactly these
    ("draft", "dev", {"order.update", "order.submit", "order.cancel"}),
    ("draft", "tess", set()),
    ("draft", "rel", {"order.cancel"}),
    ("draft", "olga", {"order.update", "order.submit", "order.cancel"}),
    ("submitted", "dev", {"order.deploy", "order.update", "order.cancel"}),
    ("submitted", "tess", set()),
    ("submitted", "rel", {"order.cancel"}),
    ("test:deploying", "dev", set()),
    ("test:deploying", "olga", set()),
    ("test:deployed", "dev", {"order.deploy", "order.cancel"}),
    ("test:deployed", "tess", {"order.pass", "order.reject"}),
    ("test:deployed", "rel", {"order.rollback", "order.cancel"}),
    ("test:deployed", "olga", {"order.deploy", "order.pass", "order.reject",
                               "order.rollback", "order.cancel"}),
    ("test:failed", "dev", {"order.deploy", "order.cancel"}),
    ("test:failed", "tess", set()),
    ("test:passed", "rel", {"order.deploy", "order.rollback", "order.cancel"}),
    ("test:passed", "tess", set()),
    ("test:passed", "dev", {"order.cancel"}),
    ("staging:deployed", "tess", {"order.pass", "order.reject"}),
    ("staging:deployed", "dev", {"order.cancel"}),
    ("staging:passed", "rel", {"order.release", "order.rollback", "order.cancel"}),
    ("staging:passed", "dev", {"order.cancel"}),
    ("staging:passed", "tess", set()),
    ("done", "rel", {"order.rollback"}),
    ("done", "dev", set()),
    ("cancelled", "olga", set()),
]


def test_each_role_gets_the_buttons_of_its_moves_and_no_others(world: World) -> None:
    orders = {state: world.order_in(state) for state in {row[0] for row in BUTTONS}}
    for user in ("dev", "tess", "rel", "olga"):
        client = world.as_user(user)
        for state, who, expected in BUTTONS:
            if who != user:
                continue
            page = client.get(f"/orders/{orders[state]}")
            assert page.status_code == 200, page.text
            assert actions_of(page.text) == expected, (state, user)
            assert f'data-state="{state}"' in page.text  # the badge in #order-state


def test_redeploy_offers_iterative_and_full_and_a_stranger_is_refused(world: World) -> None:
    number = world.order_in("test:failed")
    page = world.as_user("dev").get(f"/orders/{number}").text
    assert f'href="/orders/{number}/deploy?stage=test"' in page
    assert f'href="/orders/{number}/deploy?stage=test&amp;full=1"' in page
    assert "Redeploy changed services on test" in page and "Redeploy everything on test" in page
    refused = world.as_user("nobody").get(f"/orders/{number}")
    assert refused.status_code == 403
    assert "needs the role" in refused.text and "order.deploy" not in refused.text


def test_the_pipeline_shows_each_stage_phase_and_who_moved_it(world: World) -> None:
    number = world.order_in("staging:deployed")
    page = world.as_user("tess").get(f"/orders/{number}").text
    drawn = re.findall(r'<li class="([a-z ]*)" data-stage="(\w+)" data-phase="(\w*)"', page)
    assert drawn == [("ok", "test", "passed"), ("info current", "staging", "deployed"),
                     ("", "prod", "")]
    assert "tess ·" in page  # who passed test


def test_a_tester_passes_with_the_button(world: World) -> None:
    number = world.order_in("test:deployed")
    client = world.as_user("tess")
    page = client.get(f"/orders/{number}").text
    answer = post(client, f"/orders/{number}/pass", page)
    assert answer.status_code == 303 and answer.headers["location"] == f"/orders/{number}"
    assert state_of(world, number) == "test:passed"
    after = client.get(f"/orders/{number}").text
    assert 'class="flash ok"' in after and f"Order {number} passed" in after
    assert "order.pass" not in actions_of(after)


def test_a_rejection_needs_a_reason_shown_beside_the_field(world: World) -> None:
    number = world.order_in("test:deployed")
    client = world.as_user("tess")
    page = client.get(f"/orders/{number}").text
    empty = post(client, f"/orders/{number}/reject", page, reason="   ")
    assert empty.status_code == 422
    assert 'id="error-reason"' in empty.text and "Say why the order is rejected." in empty.text
    assert 'aria-invalid="true"' in empty.text
    assert state_of(world, number) == "test:deployed"
    done = post(client, f"/orders/{number}/reject", page, reason="the cart stays empty")
    assert done.status_code == 303
    assert state_of(world, number) == "test:rejected"
    history = rows(world.runtime, OrderHistory, OrderHistory.order_id == number)
    assert history[-1].action == "reject" and history[-1].reason == "the cart stays empty"
    assert "the cart stays empty" in client.get(f"/orders/{number}").text


def test_a_refused_action_comes_back_as_a_message_and_changes_nothing(world: World) -> None:
    number = world.order_in("test:deployed")
    client = world.as_user("dev")
    page = client.get(f"/orders/{number}").text
    answer = post(client, f"/orders/{number}/pass", page)
    assert answer.status_code == 303
    assert state_of(world, number) == "test:deployed"
    after = client.get(f"/orders/{number}").text
    assert 'class="flash bad"' in after and "Not allowed: " in after
    assert "needs the role tester" in after
    # in Chinese the kind of refusal is translated; the services' reason stays as worded
    chinese = {"Accept-Language": "zh-CN"}  # a browser sends it with every request
    page = client.get(f"/orders/{number}", headers=chinese).text
    client.post(f"/orders/{number}/pass", data={"csrf_token": csrf_of(page)}, headers=chinese,
                follow_redirects=False)
    after = client.get(f"/orders/{number}", headers=chinese).text
    assert "无权操作: " in after and "needs the role tester" in after


def test_a_form_without_its_csrf_token_is_refused(world: World) -> None:
    number = world.order_in("test:deployed")
    client = world.as_user("tess")
    answer = client.post(f"/orders/{number}/pass", data={}, follow_redirects=False)
    assert answer.status_code in (303, 403)
    assert state_of(world, number) == "test:deployed"


def test_cancel_with_a_reason(world: World) -> None:
    number = world.order_in("submitted")
    client = world.as_user("dev")
    page = client.get(f"/orders/{number}").text
    assert 'id="cancel-form"' in page
    assert post(client, f"/orders/{number}/cancel", page,
                reason="not needed").status_code == 303
    assert state_of(world, number) == "cancelled"


def ended(world: World, deployment_id: int, timeout: float = 60.0) -> Deployment:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = rows(world.runtime, Deployment, Deployment.id == deployment_id)[0]
        if found.status in ENDED:
            return found
        time.sleep(0.1)
    raise AssertionError(f"deployment {deployment_id} did not end in {timeout} s")


def test_deploy_shows_the_plan_then_the_confirmation_starts_it(world: World) -> None:
    number = world.order_in("submitted", sql="CREATE TABLE carts (id INTEGER);")
    client = world.as_user("dev")
    plan = client.get(f"/orders/{number}/deploy?stage=test")
    assert plan.status_code == 200, plan.text
    assert 'id="deploy-confirm"' in plan.text
    assert 'data-name="api" data-action="deploy"' in plan.text  # the service will deploy
    assert "CREATE TABLE carts" in plan.text and "will run" in plan.text
    assert rows(world.runtime, Deployment) == []  # planning touched nothing
    started = post(client, f"/orders/{number}/deploy", plan.text, stage="test", full="")
    assert started.status_code == 303 and started.headers["location"] == f"/orders/{number}"
    deployment = rows(world.runtime, Deployment, Deployment.order_id == number)[0]
    assert ended(world, deployment.id).status == "succeeded"
    assert state_of(world, number) == "test:deployed"
    page = client.get(f"/orders/{number}").text
    assert f"Deployment {deployment.id} started on test." in page
    log = re.search(r'<pre id="live-log"[^>]*>(.*?)</pre>', page, re.S)
    assert log is not None and log.group(1).strip()  # the log lines, rendered
    assert "/static/live.js" not in page  # ended: nothing to follow
    assert 'data-progress="service:api"' in page and 'data-progress="host:h-test"' in page
    done = re.search(r'data-progress="service:api">(\d+)/(\d+)<', page)
    assert done is not None and done.group(1) == done.group(2)
    assert 'data-database="shop-test"' in page  # the SQL ledger per database
    # what static/live.js reads, with the login session's cookie alone
    assert f'data-events="/api/v1/deployments/{deployment.id}/events"' in page
    events = client.get(f"/api/v1/deployments/{deployment.id}/events")
    assert events.status_code == 200 and "event: end" in events.text
    assert client.get(f"/api/v1/deployments/{deployment.id}").json()["steps"]
    assert rows(world.runtime, SqlExecution)[0].status == "success"


def test_rollback_picks_a_kept_release_from_a_select(world: World) -> None:
    number = world.order_in("submitted")
    first, ok = deploy(world.runtime, number, "dev")
    assert ok
    second, ok = deploy(world.runtime, number, "dev", kind="full")
    assert ok
    releases = [rows(world.runtime, Deployment, Deployment.id == d)[0].release_id
                for d in (first, second)]
    client = world.as_user("rel")
    page = client.get(f"/orders/{number}").text
    select_html = re.search(r'<select id="field-to" name="to">(.*?)</select>', page, re.S)
    assert select_html is not None
    assert re.findall(r'<option value="([^"]*)"', select_html.group(1)) == \
        ["", releases[1], releases[0]]
    answer = post(client, f"/orders/{number}/rollback", page, stage="test", to=releases[0])
    assert answer.status_code == 303
    rollback = rows(world.runtime, Deployment, Deployment.kind == "rollback")[0]
    assert ended(world, rollback.id).status == "succeeded"
    assert current_target(world.root, "h-test", PATH) == f"releases/{releases[0]}"
    assert state_of(world, number) == "test:rolled_back"


def test_sql_the_review_refuses_waits_for_approval(world: World) -> None:
    number = world.order_in("submitted", sql=REFUSED_SQL)
    dev_page = world.as_user("dev").get(f"/orders/{number}").text
    assert "order.deploy" not in actions_of(dev_page)
    assert 'data-blocked="sql_approval"' in dev_page
    client = world.as_user("rel")
    page = client.get(f"/orders/{number}").text
    assert "order.approve_sql" in actions_of(page)
    assert post(client, f"/orders/{number}/approve-sql", page).status_code == 303
    with world.runtime.store.session() as session:
        assert get_order(session, number).sql_approved_by == "rel"
    assert "order.approve_sql" not in actions_of(client.get(f"/orders/{number}").text)
    assert "order.deploy" in actions_of(world.as_user("dev").get(f"/orders/{number}").text)


def test_an_unknown_statement_is_resolved_with_a_button(world: World) -> None:
    number = world.order_in("test:deployed", sql="CREATE TABLE carts (id INTEGER);")
    world.leave_unknown(number)
    dev_page = world.as_user("dev").get(f"/orders/{number}").text
    assert 'data-blocked="sql_unknown"' in dev_page and "sql.resolve" not in dev_page
    client = world.as_user("rel")
    page = client.get(f"/orders/{number}").text
    assert page.count('data-action="sql.resolve"') == 2  # executed, or run it again
    answer = post(client, f"/orders/{number}/sql/resolve", page, statement="api:1",
                  **{"as": "executed"})
    assert answer.status_code == 303
    assert [r.status for r in rows(world.runtime, SqlExecution)] == ["success"]
    assert "Statement api:1 is recorded as executed." in client.get(f"/orders/{number}").text
    assert "sql.resolve" not in actions_of(client.get(f"/orders/{number}").text)


def test_a_paused_deployment_is_resumed_by_its_deployer(world: World) -> None:
    number = world.order_in("test:deploying")
    with world.runtime.store.session() as session:
        session.add(Deployment(order_id=number, stage="test", status="paused",
                               pause_after_batch=True, requested_by="dev"))
        session.commit()
    assert "order.resume" not in actions_of(world.as_user("tess").get(f"/orders/{number}").text)
    client = world.as_user("dev")
    page = client.get(f"/orders/{number}").text
    assert "order.resume" in actions_of(page)
    # a deployment not ended: the log follows with JavaScript, or by the refresh link
    assert '<script src="/static/live.js" defer></script>' in page and 'id="refresh"' in page
    assert "EventSource" in client.get("/static/live.js").text
    assert post(client, f"/orders/{number}/resume", page).status_code == 303
    with world.runtime.store.session() as session:
        paused = session.scalars(select(Deployment).where(Deployment.order_id == number)).one()
        assert paused.batches_released == 1


def test_the_page_speaks_chinese_to_a_chinese_browser(world: World) -> None:
    number = world.order_in("test:deployed")
    client = world.as_user("tess")
    page = client.get(f"/orders/{number}", headers=ZH).text
    assert re.search(r'data-action="order.pass">通过<', page)
    assert re.search(r'data-action="order.reject">驳回<', page)
    assert "测试 · 已部署" in page or "测试" in page
    english = client.get(f"/orders/{number}").text
    assert re.search(r'data-action="order.pass">Pass<', english)
    plan = world.as_user("dev").get(f"/orders/{world.order_in('submitted')}/deploy",
                                    headers=ZH).text
    assert "确认" in plan


def test_a_release_is_confirmed_after_its_plan(world: World) -> None:
    number = world.order_in("submitted")
    for stage, by in (("test", "dev"), ("staging", "rel")):
        _, ok = deploy(world.runtime, number, by, stage=stage)
        assert ok
        assert act(world.runtime, number, "pass", "tess") == f"{stage}:passed"
    client = world.as_user("rel")
    page = client.get(f"/orders/{number}").text
    assert actions_of(page) == {"order.release", "order.rollback", "order.cancel"}
    plan = client.get(f"/orders/{number}/release?stage=prod")
    assert plan.status_code == 200, plan.text
    assert 'id="deploy-confirm"' in plan.text and 'name="when_open"' in plan.text
    assert 'data-action="order.release"' in plan.text
    answer = post(client, f"/orders/{number}/release", plan.text, full="")
    assert answer.status_code == 303
    release = ended(world, rows(world.runtime, Deployment, Deployment.stage == "prod")[0].id)
    assert release.status == "succeeded"
    assert state_of(world, number) == "done"
    assert current_target(world.root, "h-prod", PATH) == f"releases/{release.release_id}"


def test_a_member_who_may_not_deploy_reads_the_plan_without_a_confirmation(
        world: World) -> None:
    number = world.order_in("submitted")
    page = world.as_user("tess").get(f"/orders/{number}/deploy?stage=test")
    assert page.status_code == 200
    assert 'id="not-yours"' in page.text and 'id="deploy-confirm"' not in page.text


def test_the_job_ledger_shows_each_host_and_its_jobs(world: World) -> None:
    warm = JobSpec("warm-cache", "command", {"create": "true", "reload": "true"})
    number = world.order_in("submitted", jobs=(warm,))
    before = world.as_user("dev").get(f"/orders/{number}").text
    assert "No job has been created on a host yet." in before
    _, ok = deploy(world.runtime, number, "dev")
    assert ok
    page = world.as_user("tess").get(f"/orders/{number}").text
    ledger = page[page.index('id="job-ledger"'):page.index('id="history"')]
    assert '<h3 data-name="h-test">h-test</h3>' in ledger
    assert '<tr data-name="warm-cache">' in ledger
