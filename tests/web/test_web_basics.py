"""The web UI's frame: logging in and out, CSRF on forms, the language, the catalogs."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from golive.services.runtime import Runtime
from golive.store.models import User
from golive.testing.web import csrf_of, give_password, log_in
from golive.web import catalogs, i18n
from golive.web.pages.auth import safe_next


@pytest.mark.parametrize(("header", "locale"), [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
    ("zh", "zh_CN"),
    ("zh-TW", "zh_CN"),
    ("en-US,en;q=0.9", "en"),
    ("fr-FR,fr;q=0.9", "en"),
    ("fr-FR, zh-CN;q=0.5", "zh_CN"),
    ("", "en"),
    ("*", "en"),
])
def test_the_browser_language_is_negotiated(header: str, locale: str) -> None:
    assert i18n.negotiate(header) == locale


@pytest.mark.parametrize(("profile", "here", "browser", "locale"), [
    ("zh_CN", "en", "en", "zh_CN"),      # the profile wins
    ("", "zh_CN", "en-US", "zh_CN"),     # then the switch on this browser
    ("", "", "zh-CN", "zh_CN"),          # then the browser
    ("", "xx", "en-US", "en"),
])
def test_the_language_is_chosen_profile_first(profile: str, here: str, browser: str,
                                               locale: str) -> None:
    assert i18n.choose(profile, here, browser) == locale


@pytest.mark.parametrize(("target", "safe"), [
    ("/orders/3", "/orders/3"), ("//evil.example/x", "/"), ("https://evil.example", "/"),
    ("/\\evil.example", "/"), ("", "/"), ("/orders?x=1", "/orders?x=1"),
])
def test_after_login_only_paths_of_this_site(target: str, safe: str) -> None:
    assert safe_next(target) == safe


def test_every_message_of_the_ui_is_translated_to_chinese() -> None:
    missing = catalogs.missing("zh_CN")
    assert not missing, "untranslated (python -m golive.web.catalogs prints them): " + \
        ", ".join(f"{m.id!r} ({m.where})" for m in missing[:20])
    assert catalogs.mismatched_placeholders("zh_CN") == []
    assert catalogs.conflicts("zh_CN") == []
    assert len(catalogs.extract()) > 50


def test_the_catalog_translates_in_templates_and_code() -> None:
    with i18n.use("zh_CN"):
        assert i18n.gettext("Dashboard") == "工作台"
    with i18n.use("en"):
        assert i18n.gettext("Dashboard") == "Dashboard"


def test_pages_need_a_login_and_come_back_after_it(api: TestClient,
                                                   sqlite_runtime: Runtime) -> None:
    refused = api.get("/orders?project=shop", follow_redirects=False)
    assert refused.status_code == 303
    assert refused.headers["location"] == "/login?next=%2Forders%3Fproject%3Dshop"
    password = give_password(sqlite_runtime, "alice")
    wrong = api.post("/login", data={"user": "alice", "password": "nope", "next": "/orders"})
    assert wrong.status_code == 401
    assert "The user name or the password is wrong." in wrong.text
    assert 'value="alice"' in wrong.text  # the name typed is kept, the password is not
    right = api.post("/login", data={"user": "alice", "password": password,
                                     "next": "/orders"}, follow_redirects=False)
    assert right.status_code == 303 and right.headers["location"] == "/orders"
    cookie = right.headers["set-cookie"]
    assert "golive_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in \
        cookie.lower()


def test_the_login_page_speaks_the_browser_language(api: TestClient) -> None:
    page = api.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "登录 golive" in page.text and 'lang="zh-CN"' in page.text
    page = api.get("/login", headers={"Accept-Language": "en-US"})
    assert "Log in to golive" in page.text and 'lang="en"' in page.text


def test_pages_forbid_framing_and_foreign_scripts(api: TestClient) -> None:
    headers = api.get("/login").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src" not in headers["content-security-policy"]  # default-src 'self'
    assert headers["x-content-type-options"] == "nosniff"


def test_a_form_without_its_csrf_token_is_refused(api: TestClient,
                                                  sqlite_runtime: Runtime) -> None:
    log_in(api, "alice", give_password(sqlite_runtime, "alice"))
    refused = api.post("/logout", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert "The form has expired" in refused.text
    assert api.get("/orders", follow_redirects=False).status_code == 200  # still logged in


def test_logging_out_ends_the_session(api: TestClient, sqlite_runtime: Runtime) -> None:
    log_in(api, "alice", give_password(sqlite_runtime, "alice"))
    token = csrf_of(api.get("/orders").text)
    out = api.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert api.get("/orders", follow_redirects=False).status_code == 303


def test_the_language_switch_keeps_the_choice_in_the_profile(
        api: TestClient, sqlite_runtime: Runtime) -> None:
    anonymous = api.post("/language", data={"language": "zh_CN", "next": "/login"})
    assert "登录 golive" in anonymous.text  # the cookie: this browser, before logging in
    api.cookies.clear()
    log_in(api, "alice", give_password(sqlite_runtime, "alice"))
    page = api.get("/orders", headers={"Accept-Language": "en"})
    answer = api.post("/language", data={"language": "zh_CN", "next": "/login",
                                         "csrf_token": csrf_of(page.text)},
                      follow_redirects=False)
    assert answer.status_code == 303
    with sqlite_runtime.store.session() as session:
        assert session.scalar(select(User.language).where(User.name == "alice")) == "zh_CN"
