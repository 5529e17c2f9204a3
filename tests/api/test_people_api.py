"""Users, members, API tokens and the audit log through the HTTP API, on the real SQLite
store: each operation's answer, its refusals (403 naming the role, 404, 422 naming the
field), a token's life (shown once, works as Bearer, revoked or expired → 401), and the
audit entry every write leaves, refused ones included, with no secret in it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from golive.services.runtime import Runtime
from golive.store.models import ApiToken, utcnow
from golive.testing.server import api_error as error
from golive.testing.server import api_token, bearer
from golive.testing.world import apply_config, local_hosts

API = "/api/v1"
SECRETS = {"DB_PASSWORD": "db-pw-Pe71", "DINGTALK_SECRET": "SEC-Pe72",
           "DINGTALK_URL": "https://127.0.0.1:9/robot/send?access_token=tok-Pe73"}
NEW_PASSWORD = "horse-battery-Pe74"
MEMBERS = [{"user": "olga", "roles": ["owner"]}, {"user": "dev", "roles": ["developer"]},
           {"user": "tess", "roles": ["tester"]}]


def golive_yaml(root: Path) -> dict[str, Any]:
    stage = {"path": "srv/api", "hosts": ["h1"]}
    return {
        "hosts": local_hosts(root, ["h1"]),
        "databases": [{"name": "shop-db",
                       "url": "mysql+pymysql://deploy:${DB_PASSWORD}@127.0.0.1/shop"}],
        "projects": [
            {"name": "shop", "stages": ["test", "prod"], "members": MEMBERS,
             "notify": [{"type": "dingtalk", "webhook": "${DINGTALK_URL}",
                         "secret": "${DINGTALK_SECRET}"}],
             "services": [{"name": "api", "repo": str(root / "api.git"),
                           "stages": {"test": stage, "prod": {**stage, "database": "shop-db"}}}]},
            {"name": "blog", "stages": ["test"], "members": [{"user": "bea", "roles": ["owner"]}],
             "services": [{"name": "web", "repo": str(root / "web.git"),
                           "stages": {"test": {"path": "srv/web", "hosts": ["h1"]}}}]},
        ],
    }


@dataclass
class World:
    api: TestClient
    runtime: Runtime
    tokens: dict[str, str]

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.api.request(method, API + path, headers=bearer(self.tokens[who]), **kwargs)


@pytest.fixture
def world(api: TestClient, sqlite_runtime: Runtime, tmp_path: Path) -> World:
    apply_config(sqlite_runtime, tmp_path / "golive.yaml", golive_yaml(tmp_path), SECRETS)
    names = ("admin", "olga", "dev", "tess", "bea")
    return World(api, sqlite_runtime, {n: api_token(sqlite_runtime, n) for n in names})


def test_users_list_and_me(world: World) -> None:
    rows = world.call("dev", "GET", "/users").json()
    assert {"admin", "olga", "dev", "tess", "bea"} <= {r["name"] for r in rows}
    assert set(rows[0]) == {"name", "display_name", "email", "mobile", "language", "is_admin",
                            "wecom_id", "dingtalk_id", "feishu_id"}
    me = world.call("dev", "GET", "/me").json()
    assert (me["name"], me["is_admin"]) == ("dev", False)
    assert world.call("admin", "GET", "/me").json()["is_admin"] is True
    assert error(world.api.get(f"{API}/me"), 401)["kind"] == "NotAuthenticated"


def test_adding_a_user(world: World) -> None:
    made = world.call("admin", "POST", "/users", json={
        "name": "zoe", "email": "zoe@example.com", "language": "zh_CN"})
    assert made.status_code == 201, made.text
    assert (made.json()["name"], made.json()["language"]) == ("zoe", "zh_CN")
    assert "zoe" in {r["name"] for r in world.call("dev", "GET", "/users").json()}

    refused = error(world.call("dev", "POST", "/users", json={"name": "eve"}), 403)
    assert refused["message"] == "adding a user needs a site admin; dev is not one"
    assert refused["needed_roles"] == ["admin"]
    assert "eve" not in {r["name"] for r in world.call("dev", "GET", "/users").json()}

    again = error(world.call("admin", "POST", "/users", json={"name": "zoe"}), 422)
    assert again["message"] == "user zoe already exists" and again["exit_code"] == 2
    wrong = error(world.call("admin", "POST", "/users", json={"name": "x", "nick": "y"}), 422)
    assert [f["path"] for f in wrong["fields"]] == ["body.nick"]
    missing = error(world.call("admin", "POST", "/users", json={"email": "a@b.c"}), 422)
    assert [f["path"] for f in missing["fields"]] == ["body.name"]


def test_changing_a_profile(world: World) -> None:
    changed = world.call("dev", "PATCH", "/users/dev", json={"mobile": "13800000001",
                                                              "dingtalk_id": "dt-dev"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["mobile"], changed.json()["dingtalk_id"]) == ("13800000001", "dt-dev")
    assert changed.json()["email"] == ""  # left out: unchanged

    refused = error(world.call("dev", "PATCH", "/users/tess", json={"mobile": "1"}), 403)
    assert refused["message"] == "changing tess's profile needs a site admin; dev is not one"
    assert world.call("admin", "PATCH", "/users/tess", json={"mobile": "2"}).json()[
        "mobile"] == "2"
    missing = error(world.call("admin", "PATCH", "/users/ghost", json={"mobile": "1"}), 404)
    assert missing["message"] == "user ghost does not exist"
    bad = error(world.call("dev", "PATCH", "/users/dev", json={"language": "fr"}), 422)
    assert bad["message"] == ("language 'fr' is not one of: en, zh_CN "
                              "(or empty: the browser's)")
    long = error(world.call("dev", "PATCH", "/users/dev", json={"mobile": "1" * 51}), 422)
    assert [f["path"] for f in long["fields"]] == ["body.mobile"]


def test_setting_a_password(world: World) -> None:
    done = world.call("dev", "PUT", "/users/dev/password", json={"password": NEW_PASSWORD})
    assert done.status_code == 200, done.text
    assert done.json() == {"message": "password of dev set"}
    login = world.api.post(f"{API}/login", json={"user": "dev", "password": NEW_PASSWORD})
    assert login.status_code == 200, login.text

    refused = error(world.call("dev", "PUT", "/users/tess/password",
                               json={"password": NEW_PASSWORD}), 403)
    assert refused["message"] == "setting tess's password needs a site admin; dev is not one"
    short = error(world.call("dev", "PUT", "/users/dev/password", json={"password": "short"}),
                  422)
    assert short["message"] == "a password needs at least 10 characters"
    assert world.call("admin", "PUT", "/users/tess/password",
                      json={"password": NEW_PASSWORD}).status_code == 200

    log = world.call("admin", "GET", "/audit").text
    assert NEW_PASSWORD not in log and log.count('"action":"user.password"') == 4


def test_members(world: World) -> None:
    assert world.call("admin", "POST", "/users", json={"name": "newbie"}).status_code == 201
    added = world.call("olga", "POST", "/projects/shop/members",
                       json={"user": "newbie", "roles": ["tester", "developer"]})
    assert added.status_code == 200, added.text
    assert added.json() == {"user": "newbie", "display_name": "newbie",
                            "roles": ["developer", "tester"]}
    listed = world.call("tess", "GET", "/projects/shop/members").json()
    assert [(m["user"], m["roles"]) for m in listed] == [
        ("dev", ["developer"]), ("newbie", ["developer", "tester"]), ("olga", ["owner"]),
        ("tess", ["tester"])]

    refused = error(world.call("dev", "POST", "/projects/shop/members",
                               json={"user": "newbie", "roles": ["owner"]}), 403)
    assert refused["message"] == "adding a member to shop needs the role owner; dev has developer"
    assert refused["needed_roles"] == ["owner"]
    outsider = error(world.call("bea", "GET", "/projects/shop/members"), 403)
    assert "bea has no role in this project" in outsider["message"]
    assert error(world.call("olga", "POST", "/projects/nope/members",
                            json={"user": "newbie", "roles": ["tester"]}), 404)[
        "message"] == "project nope does not exist"
    assert error(world.call("olga", "POST", "/projects/shop/members",
                            json={"user": "ghost", "roles": ["tester"]}), 404)[
        "message"] == "user ghost does not exist"
    # one bad role refuses the whole request: nothing of it is kept
    bad = error(world.call("olga", "POST", "/projects/shop/members",
                           json={"user": "bea", "roles": ["tester", "boss"]}), 422)
    assert bad["message"].startswith("unknown role 'boss'")
    assert "bea" not in {m["user"] for m in world.call("olga", "GET",
                                                        "/projects/shop/members").json()}
    empty = error(world.call("olga", "POST", "/projects/shop/members",
                             json={"user": "bea", "roles": []}), 422)
    assert [f["path"] for f in empty["fields"]] == ["body.roles"]


def test_a_token_is_shown_once_works_and_can_be_revoked(world: World) -> None:
    made = world.call("dev", "POST", "/tokens", json={"name": "ci", "expires_in_days": 30})
    assert made.status_code == 201, made.text
    token = made.json()
    assert token["token"].startswith("glv_") and token["prefix"] == token["token"][:10]
    assert token["expires_at"] is not None
    me = world.api.get(f"{API}/me", headers=bearer(token["token"]))
    assert me.status_code == 200 and me.json()["name"] == "dev"

    listed = world.call("dev", "GET", "/tokens")
    assert token["token"] not in listed.text
    rows = {r["id"]: r for r in listed.json()}
    assert (rows[token["id"]]["name"], rows[token["id"]]["revoked"]) == ("ci", False)
    assert rows[token["id"]]["last_used_at"] is not None
    assert "token" not in rows[token["id"]]
    assert token["id"] not in {r["id"] for r in world.call("tess", "GET", "/tokens").json()}

    # someone else's token is not theirs to see or revoke
    assert error(world.call("tess", "DELETE", f"/tokens/{token['id']}"), 404)[
        "message"] == f"token {token['id']} does not exist"
    revoked = world.call("dev", "DELETE", f"/tokens/{token['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert token["token"] not in revoked.text
    gone = error(world.api.get(f"{API}/me", headers=bearer(token["token"])), 401)
    assert gone["message"] == "the API token is unknown, revoked or expired"
    assert world.call("dev", "GET", "/me").status_code == 200  # the other token still works


def test_an_expired_token_is_refused(world: World) -> None:
    token = world.call("dev", "POST", "/tokens", json={"name": "short",
                                                        "expires_in_days": 1}).json()
    assert world.api.get(f"{API}/me", headers=bearer(token["token"])).status_code == 200
    with world.runtime.store.session() as session:
        session.execute(update(ApiToken).where(ApiToken.id == token["id"]).values(
            expires_at=utcnow() - timedelta(minutes=1)))
        session.commit()
    gone = error(world.api.get(f"{API}/me", headers=bearer(token["token"])), 401)
    assert gone["message"] == "the API token is unknown, revoked or expired"

    for days in (0, 3651):
        bad = error(world.call("dev", "POST", "/tokens", json={"name": "x",
                                                               "expires_in_days": days}), 422)
        assert [f["path"] for f in bad["fields"]] == ["body.expires_in_days"]


def test_every_write_is_audited_and_only_owners_read_their_project(world: World) -> None:
    assert world.call("dev", "PATCH", "/users/dev", json={"mobile": "1"}).status_code == 200
    assert world.call("dev", "POST", "/users", json={"name": "eve"}).status_code == 403
    assert world.call("olga", "POST", "/projects/shop/members",
                      json={"user": "tess", "roles": ["releaser"]}).status_code == 200
    assert world.call("bea", "POST", "/projects/shop/members",
                      json={"user": "bea", "roles": ["owner"]}).status_code == 403
    assert world.call("dev", "GET", "/users").status_code == 200  # a read: not audited

    every = world.call("admin", "GET", "/audit").json()
    seen = [(e["user"], e["address"], e["action"], e["target"], e["project"], e["status"])
            for e in reversed(every)]
    assert seen == [
        ("dev", "testclient", "user.update", "PATCH /api/v1/users/dev", "", 200),
        ("dev", "testclient", "user.add", "POST /api/v1/users", "", 403),
        ("olga", "testclient", "member.add", "POST /api/v1/projects/shop/members", "shop", 200),
        ("bea", "testclient", "member.add", "POST /api/v1/projects/shop/members", "shop", 403)]
    assert every[1]["detail"] == {"project": "shop",
                                  "body": {"user": "tess", "roles": ["releaser"]}}

    refused = error(world.call("dev", "GET", "/audit"), 403)
    assert refused["message"].startswith("reading the audit log needs the role owner")
    assert error(world.call("dev", "GET", "/audit", params={"project": "shop"}), 403)[
        "message"] == "reading the audit log of shop needs the role owner; dev has developer"
    assert world.call("bea", "GET", "/audit", params={"project": "shop"}).status_code == 403
    owned = world.call("olga", "GET", "/audit").json()
    assert [(e["action"], e["user"]) for e in owned] == [("member.add", "bea"),
                                                         ("member.add", "olga")]
    assert world.call("olga", "GET", "/audit", params={"project": "shop"}).json() == owned
    assert world.call("bea", "GET", "/audit").json() == []  # blog has no entries yet

    assert len(world.call("admin", "GET", "/audit", params={"limit": 1}).json()) == 1
    bad = error(world.call("admin", "GET", "/audit", params={"limit": 0}), 422)
    assert bad["message"] == "limit must be between 1 and 1000"
    text = world.call("admin", "GET", "/audit").text
    for secret in SECRETS.values():
        assert secret not in text
