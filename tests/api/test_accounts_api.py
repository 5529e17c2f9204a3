"""Logging in: the first admin's generated password, the session cookie's flags, CSRF on
cookie-authenticated writes, the brake on password guessing, bearer tokens."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from golive.api.app import create_app
from golive.services import accounts
from golive.services.runtime import Runtime
from golive.testing.server import api_token, bearer

PASSWORD = re.compile(r"password (\S+) ")


def admin_password(announced: list[str]) -> str:
    (line,) = announced
    found = PASSWORD.search(line)
    assert found, line
    return found.group(1)


def login(api: TestClient, user: str, password: str) -> tuple[int, dict[str, object]]:
    response = api.post("/api/v1/login", json={"user": user, "password": password})
    return response.status_code, response.json()


def test_the_first_start_prints_a_generated_password_once(
        sqlite_runtime: Runtime, api: TestClient, announced: list[str]) -> None:
    password = admin_password(announced)
    assert len(password) >= 20 and password != "admin"
    assert login(api, "admin", password)[0] == 200
    again: list[str] = []
    with TestClient(create_app(runtime=sqlite_runtime, announce=again.append)):
        pass
    assert again == []  # only the hash is kept: nothing to print a second time


def test_the_session_cookie_is_httponly_lax_and_secure_over_https(
        api: TestClient, announced: list[str], sqlite_runtime: Runtime) -> None:
    status, body = login(api, "admin", admin_password(announced))
    assert status == 200 and body["user"] == "admin" and body["csrf_token"]
    cookie = api.cookies.get("golive_session")
    assert cookie
    header = next(v for k, v in api.post("/api/v1/login", json={
        "user": "admin", "password": admin_password(announced)}).headers.multi_items()
        if k == "set-cookie")
    assert "HttpOnly" in header and "SameSite=lax" in header.replace("Lax", "lax")
    assert "Secure" not in header
    with TestClient(create_app(runtime=sqlite_runtime, announce=lambda _: None),
                    base_url="https://testserver") as secure:
        answer = secure.post("/api/v1/login", json={"user": "admin",
                                                    "password": admin_password(announced)})
        assert "Secure" in answer.headers["set-cookie"]


def test_a_cookie_write_needs_the_csrf_token(api: TestClient, announced: list[str]) -> None:
    _, body = login(api, "admin", admin_password(announced))
    assert api.get("/api/v1/orders").status_code == 200  # reads need no token
    refused = api.post("/api/v1/tokens", json={"name": "ci"})
    assert refused.status_code == 403
    assert refused.json()["error"]["kind"] == "CsrfRefused"
    wrong = api.post("/api/v1/tokens", json={"name": "ci"}, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    made = api.post("/api/v1/tokens", json={"name": "ci"},
                    headers={"X-CSRF-Token": str(body["csrf_token"])})
    assert made.status_code in (200, 201), made.text


def test_no_credentials_is_401_and_a_bad_token_too(api: TestClient) -> None:
    anonymous = api.get("/api/v1/orders")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["error"]["kind"] == "NotAuthenticated"
    assert api.get("/api/v1/orders", headers=bearer("glv_not-a-token")).status_code == 401
    assert api.get("/api/v1/orders", headers={"Authorization": "Basic eDp5"}).status_code == 401


def test_a_token_acts_for_its_user_until_revoked(api: TestClient,
                                                 sqlite_runtime: Runtime) -> None:
    token = api_token(sqlite_runtime, "admin")
    assert api.get("/api/v1/orders", headers=bearer(token)).status_code == 200
    with sqlite_runtime.store.session() as session:
        (row,) = accounts.list_tokens(session, accounts.ensure_admin(session))
        accounts.revoke_token(session, accounts.ensure_admin(session), row.id)
        session.commit()
    assert api.get("/api/v1/orders", headers=bearer(token)).status_code == 401


def test_failed_logins_are_braked_per_user_then_per_address(
        api: TestClient, announced: list[str]) -> None:
    password = admin_password(announced)
    for _ in range(accounts.FAILED_LOGIN_LIMIT):
        status, body = login(api, "admin", "wrong password")
        assert status == 401
        assert body["error"]["message"] == "wrong user name or password"
    braked = api.post("/api/v1/login", json={"user": "admin", "password": password})
    assert braked.status_code == 429  # even the right password, until the window moves on
    assert int(braked.headers["retry-after"]) > 0
    # one address guessing many names is braked too
    for number in range(accounts.FAILED_LOGIN_LIMIT * 4 - accounts.FAILED_LOGIN_LIMIT):
        assert login(api, f"nobody{number}", "x")[0] == 401
    assert login(api, "someone-else", "x")[0] == 429


def test_a_successful_login_clears_the_failures_of_that_user(
        api: TestClient, announced: list[str]) -> None:
    password = admin_password(announced)
    for _ in range(accounts.FAILED_LOGIN_LIMIT - 1):
        assert login(api, "admin", "wrong")[0] == 401
    assert login(api, "admin", password)[0] == 200
    for _ in range(accounts.FAILED_LOGIN_LIMIT - 1):
        assert login(api, "admin", "wrong")[0] == 401
    assert login(api, "admin", password)[0] == 200


def test_logout_ends_the_session(api: TestClient, announced: list[str]) -> None:
    _, body = login(api, "admin", admin_password(announced))
    assert api.post("/api/v1/logout", headers={"X-CSRF-Token": str(body["csrf_token"])}
                    ).status_code == 200
    api.cookies.clear()
    assert api.get("/api/v1/orders").status_code == 401
