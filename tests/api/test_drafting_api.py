"""Drafting an order through the REST API: a service's remote branches, SQL reviewed
before it is filed, an order as its edit form shows it, and the edit of an order not
deployed yet (refused once it has been); the pure rules behind them as tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from golive.domain import sql as sqlrules
from golive.services import drafting, orders, users
from golive.services.runtime import Runtime
from golive.store.models import AuditEntry, OrderItem
from golive.testing.server import api_error, api_token, bearer
from golive.testing.world import apply_config, local_hosts, make_repo

API = "/api/v1"
LEAKY_URL = "http://deployer:hunter2-secret@127.0.0.1:9/shop.git"


@pytest.mark.parametrize(("state", "editable"), [
    ("draft", True), ("submitted", True), ("test:deploying", False),
    ("test:deployed", False), ("test:failed", False), ("test:rejected", False),
    ("staging:passed", False), ("done", False), ("cancelled", False),
])
def test_only_an_order_not_deployed_yet_is_editable(state: str, editable: bool) -> None:
    assert drafting.order_editable(state) is editable


PROCEDURE = "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END"


@pytest.mark.parametrize(("statements", "dialect"), [
    ([], sqlrules.MYSQL),
    (["CREATE TABLE a (x INT)", "INSERT INTO a VALUES ('x;y')"], sqlrules.SQLITE),
    (["-- why\nUPDATE a SET x = 1 WHERE x = 2", PROCEDURE, "SELECT 3"], sqlrules.MYSQL),
    (["CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql",
      "SELECT f()"], sqlrules.POSTGRESQL),
])
def test_a_script_splits_back_into_its_statements(statements: list[str], dialect: str) -> None:
    script = drafting.script_of(statements, dialect)
    assert sqlrules.split_statements(script, dialect) == statements
    if PROCEDURE in statements:
        assert f"DELIMITER //\n{PROCEDURE} //\nDELIMITER ;" in script


@pytest.fixture
def tokens(tmp_path: Path, sqlite_runtime: Runtime) -> dict[str, dict[str, str]]:
    """Project shop: api (a real repository, a SQLite database), web (a real
    repository), leaky (a repository URL with a password, where nothing listens);
    alice developer, tom tester; mallory is in no project."""
    api_repo = make_repo(tmp_path, "api", {"a.txt": "1"},
                         branches={"feature/a": {"a.txt": "2"}, "feature/b": {"a.txt": "3"}})
    web_repo = make_repo(tmp_path, "web", {"i.html": "1"}, branches={"feature/a": {"i": "2"}})
    stages = {s: {"mode": "checkout", "path": "srv/x", "hosts": ["h1"]} for s in ("test", "prod")}
    apply_config(sqlite_runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["h1"]),
        "databases": [{"name": "db", "url": f"sqlite:///{tmp_path}/db.sqlite"}],
        "projects": [{
            "name": "shop", "stages": ["test", "prod"],
            "members": [{"user": "alice", "roles": ["developer"]},
                        {"user": "tom", "roles": ["tester"]}],
            "services": [
                {"name": "api", "repo": api_repo.url,
                 "stages": {s: {**stages[s], "database": "db"} for s in stages}},
                {"name": "web", "repo": web_repo.url, "stages": stages},
                {"name": "leaky", "repo": LEAKY_URL, "stages": stages}]}]})
    with sqlite_runtime.store.session() as session:
        users.add_user(session, users.ensure_admin(session), "mallory")
        session.commit()
    return {name: bearer(api_token(sqlite_runtime, name)) for name in ("alice", "tom",
                                                                       "mallory")}


def test_the_branches_of_a_service_from_its_remote(
        api: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    answer = api.get(f"{API}/projects/shop/services/api/branches", headers=tokens["tom"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["branches"] == ["feature/a", "feature/b", "main"]
    error = api_error(api.get(f"{API}/projects/shop/services/leaky/branches",
                              headers=tokens["alice"]), 502)
    assert "cannot list the branches of repository http://deployer:***@127.0.0.1:9" in \
        error["message"]
    assert "hunter2" not in str(error)
    api_error(api.get(f"{API}/projects/shop/services/nope/branches",
                      headers=tokens["alice"]), 404)
    api_error(api.get(f"{API}/projects/shop/services/api/branches",
                      headers=tokens["mallory"]), 403)


def test_sql_is_reviewed_before_it_is_filed(
        api: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    answer = api.post(f"{API}/sql/review", headers=tokens["alice"], json={
        "project": "shop", "service": "api",
        "sql": "CREATE TABLE t (a INT);\nTRUNCATE t;\nUPDATE t SET a = 1 WHERE a = 2;"})
    assert answer.status_code == 200, answer.text
    review = answer.json()
    assert review["statements"] == 3
    assert [(f["statement"], f["rule"], f["severity"]) for f in review["findings"]] == [
        (2, "truncate", "refuse"), (3, "ddl-dml-mixed", "warn")]
    assert review["findings"][0]["message_zh"].startswith("TRUNCATE 会删除 t 的所有行")
    clean = api.post(f"{API}/sql/review", headers=tokens["alice"], json={
        "project": "shop", "service": "api", "sql": "SELECT 1;"}).json()
    assert clean["findings"] == [] and clean["statements"] == 1
    api_error(api.post(f"{API}/sql/review", headers=tokens["mallory"], json={
        "project": "shop", "service": "api", "sql": "SELECT 1;"}), 403)


def create(api: TestClient, headers: dict[str, str], items: list[dict[str, Any]]) -> int:
    answer = api.post(f"{API}/orders", headers=headers,
                      json={"project": "shop", "title": "first", "items": items})
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


JOB = {"name": "sweep", "kind": "cron", "schedule": "@hourly", "command": "./sweep"}


def test_an_order_is_edited_in_one_go_before_it_is_deployed(
        api: TestClient, tokens: dict[str, dict[str, str]], sqlite_runtime: Runtime) -> None:
    alice = tokens["alice"]
    number = create(api, alice, [
        {"service": "api", "branch": "feature/a", "sql": "CREATE TABLE t (a INT);",
         "jobs": [JOB]},
        {"service": "web", "branch": "feature/a"}])
    before = api.get(f"{API}/orders/{number}", headers=alice).json()
    answer = api.patch(f"{API}/orders/{number}", headers=alice, json={
        "title": "second", "items": [
            {"service": "leaky", "branch": "feature/c", "sql": "SELECT 1;"},
            {"service": "api", "branch": "feature/b",
             "sql": "CREATE TABLE t (a INT);\nDELETE FROM t WHERE a = 1;", "jobs": []}]})
    assert answer.status_code == 200, answer.text
    order = answer.json()
    assert (order["title"], order["state"]) == ("second", "draft")
    assert [(i["service"], i["branch"]) for i in order["items"]] == [
        ("leaky", "feature/c"), ("api", "feature/b")]
    api_item = order["items"][1]
    assert api_item["jobs"] == []
    assert api_item["statements"][0] == before["items"][0]["statements"][0]  # kept as it was
    assert [s["checksum"] for s in api_item["statements"]] == [
        sqlrules.checksum(text, sqlrules.SQLITE)
        for text in ("CREATE TABLE t (a INT)", "DELETE FROM t WHERE a = 1")]
    assert order["history"][-1]["action"] == "edit"
    assert "removed web" in order["history"][-1]["reason"]
    # a title alone leaves the services as they are; null SQL and jobs are kept
    answer = api.patch(f"{API}/orders/{number}", headers=alice, json={"title": "third"})
    assert [i["service"] for i in answer.json()["items"]] == ["leaky", "api"]
    answer = api.patch(f"{API}/orders/{number}", headers=alice, json={"items": [
        {"service": "api", "branch": "feature/a"}]})
    assert len(answer.json()["items"][0]["statements"]) == 2
    with sqlite_runtime.store.session() as session:
        audited = session.scalars(select(AuditEntry.action).where(
            AuditEntry.action == "order.update")).all()
        assert len(audited) == 3


@pytest.mark.parametrize(("items", "status", "words"), [
    ([], 422, "at least 1 item"),
    ([{"service": "nope", "branch": "feature/a"}], 404, "service nope of project shop"),
    ([{"service": "api", "branch": "a"}, {"service": "api", "branch": "b"}], 422,
     "service api is listed twice"),
    ([{"service": "api", "branch": "-x"}], 422, "starts with '-'"),
    ([{"service": "api", "branch": "b", "jobs": [{"name": "j", "kind": "daemon"}]}], 422,
     "kinds are pm2, cron, command"),
    ([{"service": "api", "branch": "b", "jobs": [JOB, JOB]}], 422, "job sweep is given twice"),
])
def test_a_bad_edit_changes_nothing(
        api: TestClient, tokens: dict[str, dict[str, str]], sqlite_runtime: Runtime,
        items: list[dict[str, Any]], status: int, words: str) -> None:
    number = create(api, tokens["alice"], [{"service": "web", "branch": "feature/a"}])
    answer = api.patch(f"{API}/orders/{number}", headers=tokens["alice"],
                       json={"title": "changed", "items": items})
    assert answer.status_code == status, answer.text
    assert words in answer.text
    shown = api.get(f"{API}/orders/{number}", headers=tokens["alice"]).json()
    assert shown["title"] == "first"
    assert [(i["service"], i["branch"]) for i in shown["items"]] == [("web", "feature/a")]


@pytest.mark.parametrize("moves", [
    [("submit", "alice"), ("deploy", "alice")],
    [("submit", "alice"), ("deploy", "alice"), ("succeed", None)],
    [("cancel", "alice")],
])
def test_an_order_deployed_or_ended_is_not_edited(
        api: TestClient, tokens: dict[str, dict[str, str]], sqlite_runtime: Runtime,
        moves: list[tuple[str, str | None]]) -> None:
    number = create(api, tokens["alice"], [{"service": "web", "branch": "feature/a"}])
    with sqlite_runtime.store.session() as session:
        for action, by in moves:
            orders.transition(session, number, action,
                              users.acting_user(session, by) if by else None)
            session.commit()
    error = api_error(api.patch(f"{API}/orders/{number}", headers=tokens["alice"],
                                json={"title": "late"}), 409)
    assert "only an order not deployed yet (draft or submitted)" in error["message"]
    draft = api.get(f"{API}/orders/{number}/draft", headers=tokens["alice"]).json()
    assert draft["editable"] is False and draft["title"] == "first"


def test_a_tester_or_stranger_may_not_edit(
        api: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    number = create(api, tokens["alice"], [{"service": "web", "branch": "feature/a"}])
    refused = api_error(api.patch(f"{API}/orders/{number}", headers=tokens["tom"],
                                  json={"title": "mine"}), 403)
    assert "developer" in refused["needed_roles"]
    api_error(api.patch(f"{API}/orders/{number}", headers=tokens["mallory"],
                        json={"title": "mine"}), 403)


def test_the_order_as_its_edit_form_shows_it(
        api: TestClient, tokens: dict[str, dict[str, str]], sqlite_runtime: Runtime) -> None:
    sql = "CREATE TABLE t (a INT);\n-- the first row\nINSERT INTO t VALUES (1);"
    number = create(api, tokens["alice"], [
        {"service": "api", "branch": "feature/a", "sql": sql, "jobs": [JOB]}])
    answer = api.get(f"{API}/orders/{number}/draft", headers=tokens["tom"])
    assert answer.status_code == 200, answer.text
    draft = answer.json()
    assert (draft["project"], draft["state"], draft["editable"]) == ("shop", "draft", True)
    item = draft["items"][0]
    assert item["jobs"] == [JOB]
    assert sqlrules.split_statements(item["sql"], sqlrules.SQLITE) == \
        sqlrules.split_statements(sql, sqlrules.SQLITE)
    # sent back unchanged, it changes no statement
    with sqlite_runtime.store.session() as session:
        ids = session.scalars(select(OrderItem.id).where(OrderItem.order_id == number)).all()
    again = api.patch(f"{API}/orders/{number}", headers=tokens["alice"], json={
        "items": [{"service": "api", "branch": "feature/a", "sql": item["sql"],
                   "jobs": item["jobs"]}]}).json()
    assert again["history"][-1]["reason"] == "nothing changed"
    with sqlite_runtime.store.session() as session:
        assert session.scalars(select(OrderItem.id).where(
            OrderItem.order_id == number)).all() == ids
