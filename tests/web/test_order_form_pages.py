"""The new order form and the edit form, through the real application with plain form
POSTs (no JavaScript): branches read from real git repositories, orders filed and edited
in the store, errors beside their fields, the review rules' findings, both languages."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from golive.domain import sql as sqlrules
from golive.services import orders, users
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime
from golive.store.models import Order
from golive.testing.web import csrf_of, give_password, log_in
from golive.testing.world import Repo, apply_config, commit, git, local_hosts, make_repo

API_BRANCHES = ("feature/cart", "feature/pay", "release/1.2")
MUTATING = "UPDATE carts SET total = 0;\nDROP TABLE coupons;"


@dataclass(frozen=True)
class World:
    root: Path
    api_repo: Repo
    web_repo: Repo


@pytest.fixture
def world(tmp_path: Path, sqlite_runtime: Runtime) -> World:
    """Project shop: service api (SQLite database on test) and web, each a real repository
    with several branches; alice developer, tom tester, olga owner."""
    api_repo = make_repo(tmp_path, "api", {"app.txt": "v1\n"},
                         branches={b: {"app.txt": b} for b in API_BRANCHES})
    web_repo = make_repo(tmp_path, "web", {"index.html": "v1\n"},
                         branches={"feature/cart": {"index.html": "cart"}})
    apply_config(sqlite_runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["h1"]),
        "databases": [{"name": "shop-db", "url": f"sqlite:///{tmp_path}/shop.db"}],
        "projects": [{
            "name": "shop", "stages": ["test", "prod"],
            "members": [{"user": "alice", "roles": ["developer"]},
                        {"user": "tom", "roles": ["tester"]},
                        {"user": "olga", "roles": ["owner"]}],
            "services": [
                {"name": "api", "repo": api_repo.url, "stages": {
                    s: {"mode": "checkout", "path": "srv/api", "hosts": ["h1"],
                        "database": "shop-db"} for s in ("test", "prod")}},
                {"name": "web", "repo": web_repo.url, "stages": {
                    s: {"mode": "checkout", "path": "srv/web", "hosts": ["h1"]}
                    for s in ("test", "prod")}}]}]})
    return World(tmp_path, api_repo, web_repo)


def logged_in(api: TestClient, runtime: Runtime, user: str) -> None:
    log_in(api, user, give_password(runtime, user))


def order_count(runtime: Runtime) -> int:
    with runtime.store.session() as session:
        return int(session.scalar(select(func.count(Order.id))) or 0)


def error_beside(page: str, name: str) -> str:
    """The error text shown beside field ``name`` ('' when there is none)."""
    found = re.search(rf'<p class="error" id="error-{re.escape(name)}">([^<]*)</p>', page)
    return html.unescape(found.group(1)) if found else ""


def form_of(page: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"csrf_token": csrf_of(page), "project": "shop", "title": ""}
    return {**base, **fields}


def test_the_form_offers_each_service_its_remote_branches(
        api: TestClient, world: World, sqlite_runtime: Runtime) -> None:
    logged_in(api, sqlite_runtime, "alice")
    page = api.get("/orders/new")
    assert page.status_code == 200, page.text
    assert 'id="new-order"' in page.text
    options = re.findall(r'<datalist id="branches-api">(.*?)</datalist>', page.text)[0]
    assert re.findall(r'<option value="([^"]+)">', options) == sorted(
        [*API_BRANCHES, "main"])
    assert 'list="branches-web"' in page.text
    for action in ("order.create", "order.submit", "sql.review"):
        assert f'data-action="{action}"' in page.text
    assert '<script src="/static/order_form.js" defer>' in page.text
    script = api.get("/static/order_form.js")
    assert script.status_code == 200 and "/orders/review" not in script.text  # the form says
    assert 'data-review-url="/orders/review"' in page.text
    # read from the remote each time: a branch pushed a moment ago is offered
    commit(world.api_repo, "main", {"x.txt": "x"})
    git(world.api_repo.work, "push", "-q", "origin", "main:refs/heads/hotfix/now")
    assert '<option value="hotfix/now">' in api.get("/orders/new").text


def test_a_repository_that_does_not_answer_is_named_beside_the_branch(
        api: TestClient, world: World, sqlite_runtime: Runtime) -> None:
    stage = {"mode": "checkout", "path": "srv/old", "hosts": ["h1"]}
    apply_config(sqlite_runtime, world.root / "legacy.yaml", {"projects": [{
        "name": "legacy", "stages": ["test", "prod"],
        "members": [{"user": "alice", "roles": ["developer"]}],
        "services": [{"name": "old", "repo": "http://deployer:hunter2@127.0.0.1:9/old.git",
                      "stages": {"test": stage, "prod": stage}}]}]})
    logged_in(api, sqlite_runtime, "alice")
    picker = api.get("/orders/new").text  # two projects now: pick one first
    assert 'id="pick-project"' in picker and 'id="new-order"' not in picker
    page = api.get("/orders/new?project=legacy").text
    assert 'id="new-order"' in page
    shown = html.unescape(re.findall(r'<p class="error branches-error">([^<]*)</p>', page)[0])
    assert "cannot list the branches of repository http://deployer:***@127.0.0.1:9" in shown
    assert "hunter2" not in page
    # a branch can still be typed, and the order filed
    answer = api.post("/orders/new", follow_redirects=False, data=form_of(
        page, project="legacy", service="old", create="1", **{"branch.old": "main"}))
    assert answer.status_code == 303, answer.text


def test_only_developers_and_owners_get_the_form(
        api: TestClient, world: World, sqlite_runtime: Runtime) -> None:
    logged_in(api, sqlite_runtime, "tom")
    page = api.get("/orders/new")
    assert page.status_code == 200
    assert 'id="new-order"' not in page.text
    assert "cannot file an order" in page.text


def test_filing_and_submitting_an_order_through_the_form(
        api: TestClient, world: World, sqlite_runtime: Runtime) -> None:
    logged_in(api, sqlite_runtime, "alice")
    page = api.get("/orders/new").text
    jobs = "- name: nightly\n  kind: cron\n  schedule: '@daily'\n  command: ./report\n"
    sql = "CREATE TABLE coupons (code TEXT);\nINSERT INTO coupons VALUES ('A;B');"
    answer = api.post("/orders/new", follow_redirects=False, data=form_of(
        page, title="Coupons", service=["api", "web"], submit="1",
        **{"branch.api": "feature/pay", "sql.api": sql, "jobs.api": jobs,
           "branch.web": "feature/cart", "sql.web": "", "jobs.web": ""}))
    assert answer.status_code == 303, answer.text
    number = int(answer.headers["location"].rsplit("/", 1)[1])
    with sqlite_runtime.store.session() as session:
        order = orders.get_order(session, number)
        assert (order.title, order.state, order.created_by.name) == (
            "Coupons", "submitted", "alice")
        assert [(i.service.name, i.branch) for i in order.items] == [
            ("api", "feature/pay"), ("web", "feature/cart")]
        statements = order.items[0].statements
        assert [s.text for s in statements] == sqlrules.split_statements(sql, sqlrules.SQLITE)
        assert [s.checksum for s in statements] == [
            sqlrules.checksum(s.text, sqlrules.SQLITE) for s in statements]
        assert [(j.name, j.kind, j.spec) for j in order.items[0].jobs] == [
            ("nightly", "cron", {"schedule": "@daily", "command": "./report"})]
        assert order.items[1].statements == [] and order.items[1].jobs == []
    assert "is filed and submitted" in api.get(f"/orders/{number}/edit").text


def test_filing_a_draft_only(api: TestClient, world: World, sqlite_runtime: Runtime) -> None:
    logged_in(api, sqlite_runtime, "olga")  # an owner files orders too
    page = api.get("/orders/new").text
    answer = api.post("/orders/new", follow_redirects=False, data=form_of(
        page, service="web", create="1", **{"branch.web": "feature/cart"}))
    assert answer.status_code == 303, answer.text
    with sqlite_runtime.store.session() as session:
        order = orders.get_order(session, int(answer.headers["location"].rsplit("/", 1)[1]))
        assert (order.state, order.title) == ("draft", "web@feature/cart")


BAD_INPUT = [
    pytest.param({"service": "api", "branch.api": "feature/nope"}, "branch.api",
                 "is not in the repository of api", id="unknown-branch"),
    pytest.param({"service": "api", "branch.api": ""}, "branch.api",
                 "Choose the branch", id="no-branch"),
    pytest.param({"service": "api", "branch.api": "bad..name"}, "branch.api", "'..'",
                 id="not-a-branch-name"),
    pytest.param({"branch.api": "feature/pay"}, "services", "at least one service",
                 id="no-service"),
    pytest.param({"service": "api", "branch.api": "feature/pay",
                  "jobs.api": "- name: x\n  kind: daemon\n"}, "jobs.api",
                 "kinds are pm2, cron, command", id="bad-job-kind"),
    pytest.param({"service": "api", "branch.api": "feature/pay",
                  "jobs.api": "- name: x\n  kind: cron\n  schedule: soon\n  command: y\n"},
                 "jobs.api", "is not a cron schedule", id="bad-schedule"),
    pytest.param({"service": "api", "branch.api": "feature/pay", "jobs.api": "- [unclosed"},
                 "jobs.api", "not valid YAML", id="not-yaml"),
    pytest.param({"service": "api", "branch.api": "feature/pay", "title": "x" * 501},
                 "title", "at most 500 characters", id="title-too-long"),
]


@pytest.mark.parametrize(("fields", "where", "words"), BAD_INPUT)
def test_bad_input_is_shown_beside_its_field_and_nothing_is_written(
        api: TestClient, world: World, sqlite_runtime: Runtime, fields: dict[str, Any],
        where: str, words: str) -> None:
    logged_in(api, sqlite_runtime, "alice")
    page = api.get("/orders/new").text
    answer = api.post("/orders/new", data=form_of(page, create="1", **fields))
    assert answer.status_code == 422
    assert words in error_beside(answer.text, where), answer.text
    assert order_count(sqlite_runtime) == 0
    # what was typed is kept
    for name, value in fields.items():
        if name.startswith("branch.") and value:
            assert f'value="{value}"' in answer.text


def test_check_shows_the_review_findings_beside_the_sql(
        api: TestClient, world: World, sqlite_runtime: Runtime) -> None:
    logged_in(api, sqlite_runtime, "alice")
    page = api.get("/orders/new").text
    data = form_of(page, check="1", service="api",
                   **{"branch.api": "feature/pay", "sql.api": MUTATING})
    answer = api.post("/orders/new", data=data)
    assert answer.status_code == 200
    findings = re.findall(r'<div class="findings" id="findings-api"[^>]*>(.*?)</div>',
                          answer.text, re.S)[0]
    assert re.findall(r'data-rule="([^"]+)"', findings) == [
        "update-without-where", "drop-table", "ddl-dml-mixed"]
    assert "UPDATE without WHERE changes every row of carts" in findings
    assert order_count(sqlite_runtime) == 0
    clean = api.post("/orders/new", data={**data, "sql.api": "UPDATE carts SET total = 0 "
                                                             "WHERE id = 1;"})
    assert "data-rule" not in clean.text
    assert "The review rules find nothing in this SQL." in clean.text
    chinese = api.post("/orders/new", data=data, headers={"Accept-Language": "zh-CN"})
    assert "不带 WHERE 的 UPDATE 会修改 carts 的所有行" in chinese.text


def test_the_review_as_one_types(api: TestClient, world: World,
                                 sqlite_runtime: Runtime) -> None:
    logged_in(api, sqlite_runtime, "alice")
    answer = api.post("/orders/review", data={"project": "shop", "service": "api",
                                              "sql": "SELECT 1; DELETE FROM carts;"})
    assert answer.status_code == 200
    assert answer.json() == {"statements": 2, "findings": [{
        "statement": 2, "severity": "refuse", "rule": "delete-without-where",
        "message": "DELETE without WHERE removes every row of carts; add a WHERE, or have "
                   "an owner or releaser approve the order's SQL"}]}
    unknown = api.post("/orders/review", data={"project": "shop", "service": "nope",
                                               "sql": "DELETE FROM carts;"})
    assert unknown.status_code == 422 and unknown.json()["findings"] == []


def draft_order(runtime: Runtime, sql: str = "") -> int:
    with runtime.store.session() as session:
        alice = users.acting_user(session, "alice")
        number = orders.create_order(session, alice, "shop", [
            ItemRequest("api", "feature/cart", sql=sql),
            ItemRequest("web", "feature/cart")], "First try").id
        session.commit()
        return number


def test_editing_a_draft(api: TestClient, world: World, sqlite_runtime: Runtime) -> None:
    sql = "CREATE TABLE a (x INT);\nINSERT INTO a VALUES (1);"
    number = draft_order(sqlite_runtime, sql)
    with sqlite_runtime.store.session() as session:
        kept = [(s.id, s.checksum) for s in orders.get_order(session, number).items[0]
                .statements]
    logged_in(api, sqlite_runtime, "alice")
    page = api.get(f"/orders/{number}/edit")
    assert page.status_code == 200, page.text
    assert 'id="edit-order"' in page.text and 'data-action="order.update"' in page.text
    assert 'value="First try"' in page.text
    assert "CREATE TABLE a (x INT);\n\nINSERT INTO a VALUES (1);" in page.text
    jobs = "- name: worker\n  kind: pm2\n  script: worker.js\n"
    answer = api.post(f"/orders/{number}/edit", follow_redirects=False, data=form_of(
        page.text, title="Second try", service="api", save="1",
        **{"branch.api": "release/1.2", "sql.api": re.findall(
            r'<textarea id="field-sql.api"[^>]*>(.*?)</textarea>', page.text, re.S)[0]
            .replace("&#39;", "'") + "\nUPDATE a SET x = 2 WHERE x = 1;",
           "jobs.api": jobs, "branch.web": "feature/cart"}))
    assert answer.status_code == 303, answer.text
    with sqlite_runtime.store.session() as session:
        order = orders.get_order(session, number)
        assert (order.title, order.state) == ("Second try", "draft")
        assert [(i.service.name, i.branch) for i in order.items] == [("api", "release/1.2")]
        statements = order.items[0].statements
        assert [(s.id, s.checksum) for s in statements[:2]] == kept  # the same statements
        assert statements[2].checksum == sqlrules.checksum(
            "UPDATE a SET x = 2 WHERE x = 1", sqlrules.SQLITE)
        assert [(j.name, j.kind) for j in order.items[0].jobs] == [("worker", "pm2")]
        assert order.history[-1].action == "edit" and "removed web" in order.history[-1].reason
    again = api.get(f"/orders/{number}/edit").text
    assert "kind: pm2" in again and f"Order {number} is saved." in again


def test_an_edit_with_a_bad_branch_changes_nothing(
        api: TestClient, world: World, sqlite_runtime: Runtime) -> None:
    number = draft_order(sqlite_runtime)
    logged_in(api, sqlite_runtime, "alice")
    page = api.get(f"/orders/{number}/edit").text
    answer = api.post(f"/orders/{number}/edit", data=form_of(
        page, title="changed", service=["api", "web"], save="1",
        **{"branch.api": "feature/gone", "branch.web": "feature/cart"}))
    assert answer.status_code == 422
    assert "is not in the repository of api" in error_beside(answer.text, "branch.api")
    with sqlite_runtime.store.session() as session:
        assert orders.get_order(session, number).title == "First try"


def test_a_deployed_order_cannot_be_edited(
        api: TestClient, world: World, sqlite_runtime: Runtime) -> None:
    number = draft_order(sqlite_runtime)
    with sqlite_runtime.store.session() as session:
        alice = users.acting_user(session, "alice")
        for action, by in (("submit", alice), ("deploy", alice), ("succeed", None)):
            orders.transition(session, number, action, by)
            session.commit()
    logged_in(api, sqlite_runtime, "alice")
    page = api.get(f"/orders/{number}/edit")
    assert page.status_code == 409
    assert "it has been deployed" in page.text and 'id="edit-order"' not in page.text
    token = csrf_of(api.get("/orders/new").text)
    answer = api.post(f"/orders/{number}/edit", data={
        "csrf_token": token, "project": "shop", "title": "late", "service": "api",
        "branch.api": "feature/cart", "save": "1"})
    assert answer.status_code == 409
    with sqlite_runtime.store.session() as session:
        assert orders.get_order(session, number).title == "First try"


def test_a_tester_may_not_edit(api: TestClient, world: World,
                               sqlite_runtime: Runtime) -> None:
    number = draft_order(sqlite_runtime)
    logged_in(api, sqlite_runtime, "tom")
    page = api.get(f"/orders/{number}/edit")
    assert page.status_code == 403 and 'id="edit-order"' not in page.text
    assert "Only a developer or owner of project shop can edit its orders." in page.text
    answer = api.post(f"/orders/{number}/edit", data=form_of(
        api.get("/orders").text, title="mine now", service="web", save="1",
        **{"branch.web": "feature/cart"}))
    assert answer.status_code == 403
    with sqlite_runtime.store.session() as session:
        assert orders.get_order(session, number).title == "First try"


def test_the_forms_in_chinese(api: TestClient, world: World, sqlite_runtime: Runtime) -> None:
    logged_in(api, sqlite_runtime, "alice")
    chinese = {"Accept-Language": "zh-CN,zh;q=0.9"}
    page = api.get("/orders/new", headers=chinese).text
    assert "<title>新建上线单" in page
    assert re.search(r'data-action="order.create">\s*保存为草稿', page)
    assert re.search(r'data-action="order.submit">\s*创建并提交', page)
    answer = api.post("/orders/new", headers=chinese, data=form_of(
        page, create="1", service="api", **{"branch.api": "feature/none"}))
    assert "不在 api 的代码仓库中" in error_beside(answer.text, "branch.api")
    number = draft_order(sqlite_runtime)
    assert "编辑上线单" in api.get(f"/orders/{number}/edit", headers=chinese).text
