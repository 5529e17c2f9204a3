"""The account pages as their users see them: my profile and password, my API tokens,
the site admins' user management, the audit log and the agents, in both languages."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from golive.services import agents
from golive.services.runtime import Runtime
from golive.store.models import ApiToken, Deployment, Order, Project, User, utcnow
from golive.testing.server import api_token, bearer
from golive.testing.web import csrf_of, give_password, log_in
from golive.testing.world import apply_config

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
EN = {"Accept-Language": "en-US,en;q=0.9"}


@pytest.fixture
def people(api: TestClient, sqlite_runtime: Runtime, tmp_path: Path) -> dict[str, str]:
    """Projects shop (olga owner, dave developer) and other (nobody); the site admin
    "admin". Their passwords by name."""
    apply_config(sqlite_runtime, tmp_path / "golive.yaml", {"projects": [
        {"name": "shop", "stages": ["test"],
         "members": [{"user": "olga", "roles": ["owner"]},
                     {"user": "dave", "roles": ["developer"]}]},
        {"name": "other", "stages": ["test"]}]})
    return {name: give_password(sqlite_runtime, name) for name in ("admin", "olga", "dave")}


def as_user(api: TestClient, people: dict[str, str], name: str) -> None:
    api.cookies.clear()
    log_in(api, name, people[name])


def user_row(runtime: Runtime, name: str) -> User:
    with runtime.store.session() as session:
        found = session.scalar(select(User).where(User.name == name))
        assert found is not None
        session.expunge(found)
        return found


def error_beside(page: Response, field: str) -> str:
    """The text of the error shown beside ``field`` (empty: none)."""
    found = re.search(rf'<p class="error" id="error-{re.escape(field)}">([^<]*)</p>', page.text)
    return found.group(1) if found else ""


def post_form(api: TestClient, url: str, data: dict[str, str], *, form_page: str,
              headers: dict[str, str] | None = None) -> Response:
    """A form as a browser without JavaScript sends it: with the CSRF token of its page."""
    token = csrf_of(api.get(form_page).text)
    return api.post(url, data={**data, "csrf_token": token}, headers=headers or EN,
                    follow_redirects=False)


PROFILE = {"display_name": "Dave D.", "email": "dave@example.com", "mobile": "13800000000",
           "wecom_id": "dave.wecom", "dingtalk_id": "dave.ding", "feishu_id": "ou_dave",
           "language": "zh_CN"}


# --- profile ----------------------------------------------------------------------------


def test_my_profile_is_saved_and_its_language_speaks_the_next_page(
        api: TestClient, people: dict[str, str], sqlite_runtime: Runtime) -> None:
    as_user(api, people, "dave")
    shown = api.get("/profile", headers=EN)
    assert shown.status_code == 200 and 'id="profile"' in shown.text
    assert "Save" in shown.text and "DingTalk user id" in shown.text
    saved = post_form(api, "/profile", PROFILE, form_page="/profile")
    assert saved.status_code == 303 and saved.headers["location"] == "/profile"
    dave = user_row(sqlite_runtime, "dave")
    assert (dave.display_name, dave.mobile, dave.wecom_id, dave.dingtalk_id, dave.feishu_id,
            dave.language) == ("Dave D.", "13800000000", "dave.wecom", "dave.ding", "ou_dave",
                               "zh_CN")
    following = api.get("/profile", headers=EN)  # the profile beats the browser now
    assert "个人资料已保存。" in following.text and "保存" in following.text
    assert 'value="dave.wecom"' in following.text and 'lang="zh-CN"' in following.text
    back = post_form(api, "/profile", {**PROFILE, "language": ""}, form_page="/profile")
    assert back.status_code == 303
    assert user_row(sqlite_runtime, "dave").language == ""
    assert "Your profile is saved." in api.get("/profile", headers=EN).text
    assert "个人资料" in api.get("/profile", headers=ZH).text  # the browser's, again


def test_bad_profile_input_is_shown_beside_its_field_and_nothing_is_saved(
        api: TestClient, people: dict[str, str], sqlite_runtime: Runtime) -> None:
    as_user(api, people, "dave")
    wrong_language = post_form(api, "/profile", {**PROFILE, "language": "fr"},
                               form_page="/profile")
    assert wrong_language.status_code == 422
    assert "is not one of: en, zh_CN" in error_beside(wrong_language, "language")
    assert 'value="dave.wecom"' in wrong_language.text  # what was typed is kept
    too_long = post_form(api, "/profile", {**PROFILE, "mobile": "1" * 51},
                         form_page="/profile")
    assert too_long.status_code == 422 and "at most 50" in error_beside(too_long, "mobile")
    dave = user_row(sqlite_runtime, "dave")
    assert (dave.language, dave.mobile, dave.wecom_id) == ("", "", "")


def test_changing_my_password_logs_me_out_everywhere(
        api: TestClient, people: dict[str, str], sqlite_runtime: Runtime) -> None:
    as_user(api, people, "dave")
    new = "a-new-password-42"
    wrong = post_form(api, "/profile/password",
                      {"current": "not-it", "password": new, "repeat": new},
                      form_page="/profile")
    assert wrong.status_code == 422
    assert error_beside(wrong, "current") == "This is not your current password."
    differ = post_form(api, "/profile/password",
                       {"current": people["dave"], "password": new, "repeat": new + "x"},
                       form_page="/profile")
    assert error_beside(differ, "repeat") == "The two passwords differ."
    short = post_form(api, "/profile/password",
                      {"current": people["dave"], "password": "short", "repeat": "short"},
                      form_page="/profile", headers=ZH)
    assert error_beside(short, "password") == "密码至少需要 10 个字符。"
    changed = post_form(api, "/profile/password",
                        {"current": people["dave"], "password": new, "repeat": new},
                        form_page="/profile")
    assert changed.status_code == 303 and changed.headers["location"] == "/login"
    login_page = api.get("/login", headers=EN)
    assert "Your password is changed and you are logged out everywhere" in login_page.text
    assert api.get("/profile", follow_redirects=False).status_code == 303  # logged out
    refused = api.post("/login", data={"user": "dave", "password": people["dave"], "next": "/"})
    assert refused.status_code == 401
    log_in(api, "dave", new)


def test_guessing_my_current_password_is_braked_like_a_login(
        api: TestClient, people: dict[str, str]) -> None:
    as_user(api, people, "dave")
    new = "a-new-password-42"
    for _ in range(5):
        post_form(api, "/profile/password", {"current": "guess", "password": new,
                                             "repeat": new}, form_page="/profile")
    braked = post_form(api, "/profile/password", {
        "current": people["dave"], "password": new, "repeat": new}, form_page="/profile")
    assert braked.status_code == 422
    assert error_beside(braked, "current").startswith("Too many failed logins")
    assert api.get("/profile", follow_redirects=False).status_code == 200  # not changed


# --- tokens -----------------------------------------------------------------------------


def test_a_token_is_shown_once_then_only_its_prefix_and_revoking_stops_it(
        api: TestClient, people: dict[str, str], sqlite_runtime: Runtime) -> None:
    as_user(api, people, "dave")
    created = post_form(api, "/tokens", {"name": "ci", "expires_in_days": "30"},
                        form_page="/tokens")
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    secret = re.search(r'<pre class="token-secret" id="token-secret">(glv_[^<]+)</pre>',
                       created.text)
    assert secret is not None and "shown this once" in created.text
    token = secret.group(1)
    assert api.get("/api/v1/me", headers=bearer(token)).json()["name"] == "dave"
    listed = api.get("/tokens", headers=EN)
    assert token not in listed.text
    with sqlite_runtime.store.session() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.name == "ci"))
        assert row is not None and token.startswith(row.prefix)
        token_id, prefix = row.id, row.prefix
    assert f'data-id="{token_id}" data-name="ci"' in listed.text and prefix in listed.text
    assert 'data-action="token.revoke"' in listed.text
    revoked = post_form(api, f"/tokens/{token_id}/revoke", {}, form_page="/tokens",
                        headers=ZH)
    assert revoked.status_code == 303
    after = api.get("/tokens", headers=ZH)
    assert "令牌 ci 已吊销" in after.text and "已吊销" in after.text
    assert 'data-action="token.revoke"' not in after.text
    assert api.get("/api/v1/me", headers=bearer(token)).status_code == 401


@pytest.mark.parametrize(("form", "field", "words"), [
    ({"name": "ci", "expires_in_days": "soon"}, "expires_in_days", "whole number of days"),
    ({"name": "ci", "expires_in_days": "0"}, "expires_in_days", "greater than or equal to 1"),
    ({"name": "", "expires_in_days": ""}, "name", "at least 1 character"),
])
def test_a_bad_token_request_is_shown_beside_its_field(
        api: TestClient, people: dict[str, str], sqlite_runtime: Runtime,
        form: dict[str, str], field: str, words: str) -> None:
    as_user(api, people, "dave")
    refused = post_form(api, "/tokens", form, form_page="/tokens")
    assert refused.status_code == 422 and words in error_beside(refused, field)
    assert 'id="token-secret"' not in refused.text
    with sqlite_runtime.store.session() as session:
        assert session.scalar(select(ApiToken.id)) is None


# --- users (site admins) ---------------------------------------------------------------


def test_an_admin_adds_a_user_who_can_then_log_in(
        api: TestClient, people: dict[str, str], sqlite_runtime: Runtime) -> None:
    as_user(api, people, "admin")
    listed = api.get("/admin/users", headers=EN)
    assert listed.status_code == 200 and 'id="new-user"' in listed.text
    assert 'data-name="olga"' in listed.text and 'href="/admin/users"' in listed.text
    added = post_form(api, "/admin/users", {
        "name": "nina", "display_name": "Nina", "email": "nina@example.com", "mobile": "",
        "language": "zh_CN", "password": "nina-password-1"}, form_page="/admin/users")
    assert added.status_code == 303
    assert "User nina is added and can log in." in api.get("/admin/users", headers=EN).text
    nina = user_row(sqlite_runtime, "nina")
    assert (nina.display_name, nina.language, nina.is_admin) == ("Nina", "zh_CN", False)
    as_user(api, {"nina": "nina-password-1"}, "nina")
    assert "我的令牌" in api.get("/tokens").text  # her language, from her profile


def test_an_admin_may_add_a_user_without_a_password_then_set_it(
        api: TestClient, people: dict[str, str], sqlite_runtime: Runtime) -> None:
    as_user(api, people, "admin")
    added = post_form(api, "/admin/users", {"name": "ops", "admin": "yes", "language": ""},
                      form_page="/admin/users")
    assert added.status_code == 303 and added.headers["location"] == "/admin/users/ops"
    assert user_row(sqlite_runtime, "ops").is_admin
    shown = api.get("/admin/users/ops", headers=EN)
    assert "Set a password so that they can log in." in shown.text
    assert 'id="user-password"' in shown.text
    set_it = post_form(api, "/admin/users/ops/password",
                       {"password": "ops-password-1", "repeat": "ops-password-1"},
                       form_page="/admin/users/ops")
    assert set_it.status_code == 303
    log_in(api, "ops", "ops-password-1")


@pytest.mark.parametrize(("form", "field", "words"), [
    ({"name": "olga"}, "name", "user olga already exists"),
    ({"name": "bad name!"}, "name", "is not a valid name"),
    ({"name": "nina", "language": "fr"}, "language", "is not one of"),
    ({"name": "nina", "password": "short"}, "password", "at least 10 characters"),
    ({"name": "nina", "email": "x" * 201}, "email", "at most 200 characters"),
])
def test_a_bad_new_user_is_shown_beside_its_field_and_not_added(
        api: TestClient, people: dict[str, str], sqlite_runtime: Runtime,
        form: dict[str, str], field: str, words: str) -> None:
    as_user(api, people, "admin")
    refused = post_form(api, "/admin/users", form, form_page="/admin/users")
    assert refused.status_code == 422
    assert words in error_beside(refused, field).replace("&#39;", "'")
    with sqlite_runtime.store.session() as session:
        assert session.scalar(select(User.id).where(User.name.in_(["nina", "bad name!"]))) \
            is None


def test_an_admin_edits_a_profile_and_sets_a_password_ending_their_sessions(
        api: TestClient, people: dict[str, str], sqlite_runtime: Runtime) -> None:
    dave = TestClient(api.app)
    log_in(dave, "dave", people["dave"])
    as_user(api, people, "admin")
    saved = post_form(api, "/admin/users/dave", {**PROFILE, "language": "en"},
                      form_page="/admin/users/dave")
    assert saved.status_code == 303
    assert user_row(sqlite_runtime, "dave").feishu_id == "ou_dave"
    assert api.get("/admin/users/nobody", headers=EN).status_code == 404
    assert dave.get("/profile", follow_redirects=False).status_code == 200
    set_it = post_form(api, "/admin/users/dave/password",
                       {"password": "dave-new-password", "repeat": "dave-new-password"},
                       form_page="/admin/users/dave")
    assert set_it.status_code == 303
    assert "login sessions have ended" in api.get("/admin/users/dave", headers=EN).text
    assert dave.get("/profile", follow_redirects=False).status_code == 303
    log_in(dave, "dave", "dave-new-password")
    mine = post_form(api, "/admin/users/admin/password",  # my own: I am logged out too
                     {"password": "admin-new-password", "repeat": "admin-new-password"},
                     form_page="/admin/users/admin")
    assert mine.status_code == 303 and mine.headers["location"] == "/login"
    assert api.get("/admin/users", follow_redirects=False).status_code == 303
    log_in(api, "admin", "admin-new-password")


def test_a_user_who_is_not_a_site_admin_gets_403_and_no_link(
        api: TestClient, people: dict[str, str], sqlite_runtime: Runtime) -> None:
    as_user(api, people, "olga")
    assert 'href="/admin/users"' not in api.get("/profile").text
    refused = api.get("/admin/users", headers=EN)
    assert refused.status_code == 403 and "Only site admins manage users." in refused.text
    assert "只有系统管理员可以管理用户" in api.get("/admin/users", headers=ZH).text
    assert api.get("/admin/users/dave").status_code == 403
    token = csrf_of(api.get("/profile").text)
    added = api.post("/admin/users", data={"name": "eve", "password": "eve-password-1",
                                           "csrf_token": token})
    assert added.status_code == 403
    changed = api.post("/admin/users/dave", data={**PROFILE, "csrf_token": token})
    assert changed.status_code == 403
    assert api.post("/admin/users/dave/password", data={
        "password": "x" * 12, "repeat": "x" * 12, "csrf_token": token}).status_code == 403
    assert user_row(sqlite_runtime, "dave").feishu_id == ""
    with sqlite_runtime.store.session() as session:
        assert session.scalar(select(User.id).where(User.name == "eve")) is None


# --- audit ------------------------------------------------------------------------------


def add_members_through_the_api(api: TestClient, runtime: Runtime) -> None:
    """Two audited writes, one in each project (by the site admin, with a token)."""
    headers = bearer(api_token(runtime, "admin"))
    for project in ("shop", "other"):
        answer = api.post(f"/api/v1/projects/{project}/members",
                          json={"user": "dave", "roles": ["tester"]}, headers=headers)
        assert answer.status_code == 200, answer.text


def audit_actions(page: Response) -> list[tuple[str, str]]:
    """(action, project) of each row of the audit table."""
    return re.findall(r"<td><code>([a-z.]+)</code></td>\s*<td>([a-z]*)</td>", page.text)


def test_owners_read_their_projects_audit_and_admins_all_of_it(
        api: TestClient, people: dict[str, str], sqlite_runtime: Runtime) -> None:
    add_members_through_the_api(api, sqlite_runtime)
    as_user(api, people, "olga")
    mine = api.get("/audit", headers=EN)
    assert mine.status_code == 200 and 'id="audit-filter"' in mine.text
    assert audit_actions(mine) == [("member.add", "shop")]
    assert api.get("/audit?project=other").status_code == 403
    as_user(api, people, "admin")
    everything = audit_actions(api.get("/audit", headers=EN))
    assert everything[:2] == [("member.add", "other"), ("member.add", "shop")]
    assert audit_actions(api.get("/audit?project=other&limit=50")) == [
        ("member.add", "other")]
    assert "审计日志" in api.get("/audit", headers=ZH).text
    as_user(api, people, "dave")
    refused = api.get("/audit", headers=EN)
    assert refused.status_code == 403 and "audit" in refused.text


# --- agents -----------------------------------------------------------------------------


def test_the_agents_page_shows_each_agent_and_whether_it_lives(
        api: TestClient, people: dict[str, str], sqlite_runtime: Runtime) -> None:
    as_user(api, people, "dave")
    assert "No agent has started yet." in api.get("/agents", headers=EN).text
    long_ago = utcnow() - timedelta(hours=1)
    with sqlite_runtime.store.session() as session:
        agents.register(session, name="dc1-a", zone="dc1", runner="agent:dc1-a@m1:1:1",
                        concurrency=2, every=10.0)
        agents.register(session, name="dc2-a", zone="dc2", runner="agent:dc2-a@m2:1:1",
                        concurrency=1, every=10.0, now=long_ago)
        agents.register(session, name="dc3-a", zone="", runner="agent:dc3-a@m3:1:1",
                        concurrency=1, every=10.0)
        agents.stop(session, "agent:dc3-a@m3:1:1")
        shop = session.scalar(select(Project).where(Project.name == "shop"))
        dave = session.scalar(select(User).where(User.name == "dave"))
        assert shop is not None and dave is not None
        order = Order(project_id=shop.id, created_by_id=dave.id, title="x",
                      state="test:deploying")
        session.add(order)
        session.flush()
        session.add(Deployment(order_id=order.id, stage="test", status="pending",
                               requested_by="dave"))
        session.flush()
        deployment = session.scalar(select(Deployment.id))
        assert deployment is not None
        # dc1-a takes it as an agent does (the store's row says who runs it)
        assert agents.claim(session, deployment, "agent:dc1-a@m1:1:1", "dc1-a")
        session.commit()
        order_id = order.id
    english = api.get("/agents", headers=EN)
    states = re.findall(r'<tr data-name="([^"]+)">.*?<span class="badge (\w+)">([^<]+)</span>',
                        english.text, re.S)
    assert sorted(states) == [("dc1-a", "ok", "alive"), ("dc2-a", "bad", "lost"),
                              ("dc3-a", "mute", "stopped")]
    assert "up to 2 at once" in english.text and "idle" in english.text
    assert f'<a href="/orders/{order_id}">Order {order_id}</a>' in english.text
    chinese = api.get("/agents", headers=ZH)
    assert "在线" in chinese.text and "失联" in chinese.text and "已停止" in chinese.text


# --- both languages ---------------------------------------------------------------------


@pytest.mark.parametrize(("url", "english", "chinese"), [
    ("/profile", "Change my password", "修改密码"),
    ("/tokens", "Create a token", "创建令牌"),
    ("/admin/users", "Add a user", "添加用户"),
    ("/admin/users/dave", "Set the password", "设置密码"),
    ("/audit", "Audit log", "审计日志"),
    ("/agents", "Agents run the deployments", "执行节点负责"),
])
def test_each_page_speaks_both_languages(api: TestClient, people: dict[str, str], url: str,
                                         english: str, chinese: str) -> None:
    as_user(api, people, "admin")
    in_english, in_chinese = api.get(url, headers=EN), api.get(url, headers=ZH)
    assert in_english.status_code == in_chinese.status_code == 200
    assert english in in_english.text and chinese not in in_english.text
    assert chinese in in_chinese.text and english not in in_chinese.text
