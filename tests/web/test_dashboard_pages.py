"""The dashboard through the real application (TestClient, SQLite store, local hosts):
the orders waiting for each role, my orders, the recent deployments with their results,
the board after a real deployment; Chinese for a Chinese browser; the same data as
``dashboard.show`` for the API and the CLI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from order_world import ZH, World, make_world

from golive.services.runtime import Runtime
from golive.testing.server import api_token, bearer
from golive.testing.world import deploy


@pytest.fixture
def world(tmp_path: Path, sqlite_runtime: Runtime, api: TestClient) -> Iterator[World]:
    yield make_world(tmp_path, sqlite_runtime, api)


def waiting_on(html: str) -> dict[int, list[str]]:
    """Order number → the duties the "waiting for me" list names for it."""
    section = re.search(r'<section class="card" id="waiting">(.*?)</section>', html, re.S)
    assert section is not None
    found = {}
    for number, body in re.findall(r'<li data-id="(\d+)">(.*?)</li>', section.group(1), re.S):
        found[int(number)] = re.findall(r'data-duty="(\w+)"', body)
    return found


def test_each_role_sees_the_orders_waiting_for_it(world: World) -> None:
    drafted = world.order_in("draft", by="dev")
    to_test = world.order_in("test:deployed", by="dev")
    failed = world.order_in("test:failed", by="dev")
    to_promote = world.order_in("test:passed", by="olga")
    to_release = world.order_in("staging:passed", by="olga")
    with_sql = world.order_in("submitted", by="olga", sql="DROP TABLE carts;")
    world.order_in("done")
    world.order_in("cancelled")
    expected = {
        "dev": {drafted: ["submit"], failed: ["fix"]},
        "tess": {to_test: ["test"]},
        "rel": {to_promote: ["deploy"], to_release: ["release"], with_sql: ["approve_sql"]},
        "nobody": {},
    }
    for user, duties in expected.items():
        page = world.as_user(user).get("/")
        assert page.status_code == 200, page.text
        assert waiting_on(page.text) == duties, user
    owner = waiting_on(world.as_user("olga").get("/").text)
    assert owner[to_test] == ["test"] and owner[to_release] == ["release"]
    assert owner[with_sql] == ["approve_sql"]  # the deploy waits for it: not a duty yet


def test_my_orders_and_the_recent_deployments_with_their_results(world: World) -> None:
    mine = world.order_in("submitted", by="dev", title="coupon codes")
    deployment, ok = deploy(world.runtime, mine, "dev")
    assert ok
    world.order_in("draft", by="olga", title="someone else's")
    page = world.as_user("dev").get("/").text
    listed = re.search(r'id="mine">(.*?)</section>', page, re.S)
    assert listed is not None
    assert "coupon codes" in listed.group(1) and "someone else" not in listed.group(1)
    row = re.search(rf'<tr data-id="{deployment}">(.*?)</tr>', page, re.S)
    assert row is not None and 'class="badge ok"' in row.group(1)
    assert f'href="/orders/{mine}"' in row.group(1)
    board = page[page.index('id="board"'):]
    lane = board.split('data-name="test//api">')[1].split('<div class="lane')[0]
    assert f"#{mine} coupon codes" in lane and "free" not in lane
    assert "You have filed no order yet." in world.as_user("tess").get("/").text


def test_the_dashboard_speaks_chinese_to_a_chinese_browser(world: World) -> None:
    world.order_in("test:deployed")
    page = world.as_user("tess").get("/", headers=ZH).text
    assert "等我处理" in page and "测试：通过或驳回" in page and "泳道看板" in page
    assert "Waiting for me" not in page


def test_the_api_gives_the_dashboard_to_scripts(world: World) -> None:
    number = world.order_in("test:deployed")
    headers = bearer(api_token(world.runtime, "tess"))
    answer = world.client.get("/api/v1/dashboard", headers=headers)
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert [(o["id"], o["duties"]) for o in found["waiting"]] == [(number, ["test"])]
    assert found["mine"] == [] and found["deployments"] == []
    assert [b["project"] for b in found["board"]] == ["shop"]
    actions = world.client.get(f"/api/v1/orders/{number}/actions", headers=headers).json()
    assert [a["operation"] for a in actions] == ["order.pass", "order.reject"]
