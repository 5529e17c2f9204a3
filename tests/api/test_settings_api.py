"""Projects, databases and golive.yaml through the HTTP API, on the real SQLite store:
what members may read, that no answer carries a secret (the whole response text is
searched for each secret value), and apply / export with their refusals — a bad file
still named by file, line and field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from golive.services.runtime import Runtime
from golive.testing.server import api_error as error
from golive.testing.server import api_token, bearer
from golive.testing.world import apply_config, local_hosts

API = "/api/v1"
SECRETS = {"DB_PASSWORD": "db-pw-Se61", "BLOG_DB_PASSWORD": "db-pw-Se62",
           "DINGTALK_SECRET": "SEC-Se63", "PUSH_SECRET": "push-Se64",
           "DINGTALK_URL": "https://127.0.0.1:9/robot/send?access_token=tok-Se65",
           "REPO_TOKEN": "repo-Se66"}


def golive_yaml(root: Path) -> dict[str, Any]:
    return {
        "hosts": local_hosts(root, ["h1", "h2"]),
        "databases": [
            {"name": "shop-db", "url": "mysql+pymysql://deploy:${DB_PASSWORD}@127.0.0.1/shop"},
            {"name": "blog-db", "url": "postgresql+psycopg://blog:${BLOG_DB_PASSWORD}@db/blog",
             "statement_timeout": 30}],
        "projects": [
            {"name": "shop", "stages": ["test", "prod"], "auto_promote": True,
             "release_windows": ["Mon-Thu 10:00-11:30"], "release_timezone": "Asia/Shanghai",
             "freeze": ["2030-12-24"], "redeploy_on_push": True, "push_secret": "${PUSH_SECRET}",
             "members": [{"user": "olga", "roles": ["owner"]},
                         {"user": "dev", "roles": ["developer", "tester"]}],
             "notify": [{"type": "dingtalk", "webhook": "${DINGTALK_URL}",
                         "secret": "${DINGTALK_SECRET}", "events": ["released"],
                         "language": "zh_CN"}],
             "services": [{
                 "name": "api", "repo": "https://ci:${REPO_TOKEN}@git.example.com/shop/api.git",
                 "build": "make", "stages": {
                     "test": {"mode": "checkout", "path": "srv/api",
                              "lanes": {"t1": {"hosts": ["h1"]}, "t2": {"hosts": ["h2"]}}},
                     "prod": {"path": "srv/api", "hosts": ["h1", "h2"], "database": "shop-db",
                              "batch": 1, "keep_releases": 3}}}]},
            {"name": "blog", "stages": ["test"], "members": [{"user": "bea", "roles": ["owner"]}],
             "services": [{"name": "web", "repo": str(root / "web.git"), "stages": {
                 "test": {"path": "srv/web", "hosts": ["h1"], "database": "blog-db"}}}]},
        ],
    }


@dataclass
class World:
    api: TestClient
    root: Path
    tokens: dict[str, str]

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.api.request(method, API + path, headers=bearer(self.tokens[who]), **kwargs)


@pytest.fixture
def world(api: TestClient, sqlite_runtime: Runtime, tmp_path: Path) -> World:
    apply_config(sqlite_runtime, tmp_path / "golive.yaml", golive_yaml(tmp_path), SECRETS)
    names = ("admin", "olga", "dev", "bea", "nobody")
    return World(api, tmp_path, {n: api_token(sqlite_runtime, n) for n in names})


def assert_no_secret(text: str, *but: str) -> None:
    for name, secret in SECRETS.items():
        if name not in but:
            assert secret not in text, name


def test_project_list_shows_the_callers_projects(world: World) -> None:
    mine = world.call("dev", "GET", "/projects").json()
    assert mine == [{"name": "shop", "stages": ["test", "prod"],
                     "roles": ["developer", "tester"], "services": ["api"]}]
    assert [p["name"] for p in world.call("bea", "GET", "/projects").json()] == ["blog"]
    assert world.call("nobody", "GET", "/projects").json() == []
    every = world.call("admin", "GET", "/projects").json()
    assert [(p["name"], p["roles"]) for p in every] == [("blog", []), ("shop", [])]


def test_project_show_has_every_setting_and_no_secret(world: World) -> None:
    answer = world.call("dev", "GET", "/projects/shop")
    assert answer.status_code == 200, answer.text
    assert_no_secret(answer.text)
    shop = answer.json()
    assert shop["stages"] == ["test", "prod"]
    assert shop["settings"] == {
        "auto_promote": True, "auto_release": False, "release_windows": ["Mon-Thu 10:00-11:30"],
        "release_timezone": "Asia/Shanghai", "freeze": ["2030-12-24"],
        "delete_branch_after_release": False, "redeploy_on_push": True, "push_secret": "***"}
    api = shop["services"][0]
    assert (api["name"], api["repo"], api["build"]) == (
        "api", "https://ci:***@git.example.com/shop/api.git", "make")
    assert api["stages"] == {
        "test": {"mode": "checkout", "path": "srv/api", "hosts": [], "database": "",
                 "lanes": {"t1": ["h1"], "t2": ["h2"]}, "job_hosts": [], "batch": 0,
                 "parallel": 20, "keep_releases": 5},
        "prod": {"mode": "artifact", "path": "srv/api", "hosts": ["h1", "h2"], "lanes": {},
                 "database": "shop-db", "job_hosts": [], "batch": 1, "parallel": 20,
                 "keep_releases": 3}}
    channel = shop["channels"][0]
    assert {k: channel[k] for k in ("name", "type", "language", "events", "webhook",
                                    "secret")} == {
        "name": "dingtalk-1", "type": "dingtalk", "language": "zh_CN",
        "events": ["released"], "webhook": "***", "secret": "***"}
    assert channel["settings"]["smtp_password"] == ""  # not set: says so, holds nothing
    assert [(m["user"], m["roles"]) for m in shop["members"]] == [
        ("dev", ["developer", "tester"]), ("olga", ["owner"])]
    assert_no_secret(world.call("admin", "GET", "/projects/shop").text)


def test_project_show_refusals(world: World) -> None:
    refused = error(world.call("bea", "GET", "/projects/shop"), 403)
    assert refused["message"] == ("reading project shop needs the role developer or tester or "
                                  "releaser or owner; bea has no role in this project")
    assert refused["needed_roles"] == ["developer", "tester", "releaser", "owner"]
    assert error(world.call("dev", "GET", "/projects/nope"), 404)[
        "message"] == "project nope does not exist"


def test_database_list_masks_passwords_and_shows_a_members_databases(world: World) -> None:
    every = world.call("admin", "GET", "/databases")
    assert_no_secret(every.text)
    assert every.json() == [
        {"name": "blog-db", "url": "postgresql+psycopg://blog:***@db/blog",
         "statement_timeout": 30},
        {"name": "shop-db", "url": "mysql+pymysql://deploy:***@127.0.0.1/shop",
         "statement_timeout": 0}]
    assert [d["name"] for d in world.call("dev", "GET", "/databases").json()] == ["shop-db"]
    assert [d["name"] for d in world.call("bea", "GET", "/databases").json()] == ["blog-db"]
    assert world.call("nobody", "GET", "/databases").json() == []


CHANGED = """\
hosts:
  - {name: h1, transport: local, root: ROOT/h1}
databases:
  - {name: new-db, url: "mysql+pymysql://app:${NEW_DB_PASSWORD}@127.0.0.1/new"}
projects:
  - name: shop
    stages: [test, prod]
    services:
      - name: api
        repo: /repos/api.git
        stages:
          test: {path: srv/api, hosts: [h1]}
"""


def test_config_apply_upserts_and_names_file_line_field(world: World) -> None:
    text = CHANGED.replace("ROOT", str(world.root / "hosts"))
    applied = world.call("admin", "POST", "/config", json={
        "text": text, "file_name": "team.yaml", "secrets": {"NEW_DB_PASSWORD": "db-pw-Se67"}})
    assert applied.status_code == 200, applied.text
    result = applied.json()
    assert result["file"] == "team.yaml"
    changes = {(c["kind"], c["name"]): c["action"] for c in result["changes"]}
    assert changes[("database", "new-db")] == "created"
    assert changes[("service", "shop/api")] == "updated"
    assert changes[("host", "h2")] == "kept"
    assert [d["name"] for d in world.call("admin", "GET", "/databases").json()] == [
        "blog-db", "new-db", "shop-db"]

    wrong = text.replace("hosts: [h1]}", "hostz: [h1]}")
    bad = error(world.call("admin", "POST", "/config", json={
        "text": wrong, "file_name": "team.yaml", "secrets": {"NEW_DB_PASSWORD": "x"}}), 422)
    assert bad["message"] == ("team.yaml:12: projects[0].services[0].stages.test.hostz: "
                              "unknown field")
    assert bad["exit_code"] == 2
    unset = error(world.call("admin", "POST", "/config", json={"text": text,
                                                                "file_name": "team.yaml"}), 422)
    assert unset["message"] == ("team.yaml:4: databases[0].url: environment variable "
                                "NEW_DB_PASSWORD is not set (used as ${NEW_DB_PASSWORD}); set "
                                "it, or write the value in the file")
    refused = error(world.call("olga", "POST", "/config", json={"text": text}), 403)
    assert refused["message"] == "applying a configuration needs a site admin; olga is not one"
    missing = error(world.call("admin", "POST", "/config", json={"file_name": "x.yaml"}), 422)
    assert [f["path"] for f in missing["fields"]] == ["body.text"]

    log = world.call("admin", "GET", "/audit").json()  # a body the schema refuses is not
    assert [(e["action"], e["status"]) for e in log] == [  # run, so not audited either
        ("config.apply", 403), ("config.apply", 422), ("config.apply", 422),
        ("config.apply", 200)]
    assert log[-1]["detail"]["body"]["secrets"] == "***"
    assert "db-pw-Se67" not in world.call("admin", "GET", "/audit").text


def test_config_export_hides_secrets_unless_an_admin_asks(world: World) -> None:
    exported = world.call("admin", "GET", "/config")
    assert exported.status_code == 200, exported.text
    # a token written into a repository URL is not a secret field of golive.yaml: export
    # writes the URL as applied (left alone here, see the report of issue 9)
    assert_no_secret(exported.text, "REPO_TOKEN")
    data = yaml.safe_load(exported.json()["text"])
    assert data["databases"][1]["url"] == "mysql+pymysql://deploy:${DB_PASSWORD}@127.0.0.1/shop"
    assert data["projects"][1]["notify"][0]["secret"] == "${DINGTALK_SECRET}"

    clear = world.call("admin", "GET", "/config", params={"secrets": "true"}).json()["text"]
    assert SECRETS["DB_PASSWORD"] in clear and SECRETS["DINGTALK_SECRET"] in clear
    for who in ("olga", "dev"):
        refused = error(world.call(who, "GET", "/config"), 403)
        assert refused["message"] == (f"exporting the configuration needs a site admin; "
                                      f"{who} is not one")
