"""golive's errors as HTTP answers (``api/errors.py``): one test per mapping, each
through a real route on a real store, and the one body shape they all share —
``{"error": {"kind", "message", "exit_code", ...}}`` with ``exit_code`` the one the CLI
exits with, so the remote CLI prints the same line and exits the same way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from golive.api.app import create_app
from golive.api.errors import ErrorBody
from golive.errors import PermissionDenied, TransitionRefused
from golive.services import orders, requests, users
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime
from golive.testing.server import api_token, bearer
from golive.testing.world import apply_config, file_order, local_hosts, make_repo

API = "/api/v1"
BRANCH = "feature/x"
BASE_KEYS = {"kind", "message", "exit_code"}


def seed(runtime: Runtime, root: Path, **project: Any) -> None:
    """Project ``shop`` (test, staging, prod; service ``api`` on local hosts) with a
    developer and a tester; ``project`` adds or replaces settings of the project."""
    repo = make_repo(root, "api", {"app.txt": "v1\n"}, branches={BRANCH: {"app.txt": "v2\n"}})
    stages = {stage: {"mode": "checkout", "path": "srv/api", "hosts": [f"h-{stage}"]}
              for stage in ("test", "staging", "prod")}
    apply_config(runtime, root / "golive.yaml", {
        "hosts": local_hosts(root, ["h-test", "h-staging", "h-prod"]),
        "projects": [{
            "name": "shop", "stages": ["test", "staging", "prod"],
            "members": [{"user": "dev", "roles": ["developer"]},
                        {"user": "tess", "roles": ["tester"]},
                        {"user": "rel", "roles": ["releaser"]}],
            "services": [{"name": "api", "repo": repo.url, "stages": stages},
                         {"name": "ghost", "repo": str(root / "repos" / "missing.git"),
                          "stages": stages}],
            **project}]})


def draft(runtime: Runtime) -> int:
    with runtime.store.session() as session:
        order = orders.create_order(session, users.acting_user(session, "dev"), "shop",
                                    [ItemRequest("api", BRANCH)])
        session.commit()
        return order.id


def move(runtime: Runtime, order_id: int, *steps: tuple[str, str | None]) -> None:
    with runtime.store.session() as session:
        for action, by in steps:
            user = None if by is None else users.acting_user(session, by)
            orders.transition(session, order_id, action, user)
            session.commit()


def error_of(response: Any, status: int, kind: str, exit_code: int,
             extra: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """The error detail of ``response``, checked: status, the shape (exactly the base keys
    and ``extra``), the kind and the CLI's exit code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    ErrorBody.model_validate(body)
    error: dict[str, Any] = body["error"]
    assert set(error) == BASE_KEYS | extra, error
    assert (error["kind"], error["exit_code"]) == (kind, exit_code), error
    assert error["message"].strip()
    return error


def refusal(runtime: Runtime, order_id: int, action: str, by: str,
            expected: type[Exception]) -> str:
    """The message the services refuse ``action`` with (nothing is written)."""
    with runtime.store.session() as session, pytest.raises(expected) as refused:
        orders.transition(session, order_id, action, users.acting_user(session, by))
    return str(refused.value)


def test_a_refused_transition_is_409_with_the_refusal_and_exit_code_1(
        api: TestClient, sqlite_runtime: Runtime, tmp_path: Path) -> None:
    seed(sqlite_runtime, tmp_path)
    order_id = draft(sqlite_runtime)
    expected = refusal(sqlite_runtime, order_id, "pass", "admin", TransitionRefused)
    response = api.post(f"{API}/orders/{order_id}/pass",
                        headers=bearer(api_token(sqlite_runtime, "admin")))
    error = error_of(response, 409, "TransitionRefused", 1)
    assert error["message"] == expected
    assert "only a deployed stage can be passed" in error["message"]


def test_a_missing_role_is_403_naming_the_roles_needed(
        api: TestClient, sqlite_runtime: Runtime, tmp_path: Path) -> None:
    seed(sqlite_runtime, tmp_path)
    order_id = draft(sqlite_runtime)
    expected = refusal(sqlite_runtime, order_id, "submit", "tess", PermissionDenied)
    response = api.post(f"{API}/orders/{order_id}/submit",
                        headers=bearer(api_token(sqlite_runtime, "tess")))
    error = error_of(response, 403, "PermissionDenied", 1, {"needed_roles"})
    assert error["message"] == expected
    assert error["needed_roles"] == ["developer", "owner"]


def test_an_unknown_thing_is_404_with_exit_code_2(
        api: TestClient, sqlite_runtime: Runtime, tmp_path: Path) -> None:
    seed(sqlite_runtime, tmp_path)
    token = bearer(api_token(sqlite_runtime, "admin"))
    error = error_of(api.get(f"{API}/orders/424242", headers=token), 404, "NotFound", 2)
    assert error["message"] == "order 424242 does not exist"
    error = error_of(api.get(f"{API}/projects/nowhere", headers=token), 404, "NotFound", 2)
    assert error["message"] == "project nowhere does not exist"


def test_a_malformed_request_is_422_with_the_path_of_each_wrong_field(
        api: TestClient, sqlite_runtime: Runtime, tmp_path: Path) -> None:
    seed(sqlite_runtime, tmp_path)
    token = bearer(api_token(sqlite_runtime, "dev"))
    response = api.post(f"{API}/orders", headers=token, json={
        "project": "shop", "items": [{"service": "api"}], "colour": "red"})
    error = error_of(response, 422, "InputError", 2, {"fields"})
    paths = {f["path"]: f["message"] for f in error["fields"]}
    assert set(paths) == {"body.items.0.branch", "body.colour"}, paths
    assert "required" in paths["body.items.0.branch"].lower()
    assert "body.items.0.branch" in error["message"] and "body.colour" in error["message"]
    error = error_of(api.get(f"{API}/orders/first", headers=token), 422, "InputError", 2,
                     {"fields"})
    assert [f["path"] for f in error["fields"]] == ["path.number"]


def test_bad_input_the_services_refuse_is_422_too(
        api: TestClient, sqlite_runtime: Runtime, tmp_path: Path) -> None:
    seed(sqlite_runtime, tmp_path)
    token = bearer(api_token(sqlite_runtime, "dev"))
    response = api.post(f"{API}/orders", headers=token, json={
        "project": "shop", "items": [{"service": "api", "branch": "../../etc"}]})
    error = error_of(response, 422, "InputError", 2)
    assert error["message"] == ("branch '../../etc' is not a valid git branch name: "
                                "it contains '..'")


def test_a_held_lock_is_409_busy_naming_the_order_that_holds_it(
        api: TestClient, sqlite_runtime: Runtime, tmp_path: Path) -> None:
    seed(sqlite_runtime, tmp_path)
    holder = file_order(sqlite_runtime, "dev", "shop", [ItemRequest("api", BRANCH)], "holder")
    waiting = file_order(sqlite_runtime, "dev", "shop", [ItemRequest("api", BRANCH)])
    with sqlite_runtime.store.session() as session:  # asked for, not started: holds the lock
        requests.request_deployment(session, holder, users.acting_user(session, "dev"))
        session.commit()
    response = api.post(f"{API}/orders/{waiting}/deploy", json={},
                        headers=bearer(api_token(sqlite_runtime, "dev")))
    error = error_of(response, 409, "Busy", 1, {"order_id"})
    assert error["order_id"] == holder
    assert f"order {holder} (holder)" in error["message"]


def test_a_release_outside_the_windows_is_409(
        api: TestClient, sqlite_runtime: Runtime, tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    freeze = f"{today - timedelta(days=1)}..{today + timedelta(days=1)}"
    seed(sqlite_runtime, tmp_path, release_windows=["daily 00:00-24:00"], freeze=[freeze])
    order_id = file_order(sqlite_runtime, "dev", "shop", [ItemRequest("api", BRANCH)])
    move(sqlite_runtime, order_id, ("deploy", "dev"), ("succeed", None), ("pass", "tess"),
         ("deploy", "rel"), ("succeed", None), ("pass", "tess"))
    response = api.post(f"{API}/orders/{order_id}/release", json={},
                        headers=bearer(api_token(sqlite_runtime, "rel")))
    error = error_of(response, 409, "OutsideWindow", 1)
    assert "window" in error["message"]


def test_a_failing_repository_is_502(
        api: TestClient, sqlite_runtime: Runtime, tmp_path: Path) -> None:
    seed(sqlite_runtime, tmp_path)
    order_id = file_order(sqlite_runtime, "dev", "shop", [ItemRequest("ghost", BRANCH)])
    response = api.get(f"{API}/orders/{order_id}/plan",
                       headers=bearer(api_token(sqlite_runtime, "dev")))
    error = error_of(response, 502, "GitError", 1)
    assert error["message"].startswith("service ghost: git clone of ")
    assert "missing.git" in error["message"]


def test_no_credentials_is_401_in_the_same_shape(api: TestClient) -> None:
    response = api.post(f"{API}/orders/1/submit")
    error = error_of(response, 401, "NotAuthenticated", 1)
    assert "Bearer" in error["message"]
    assert response.headers["www-authenticate"] == "Bearer"


TOO_LARGE = 2**63  # one past the largest integer SQLite, PostgreSQL and MariaDB store


@pytest.fixture
def server(sqlite_runtime: Runtime) -> Iterator[TestClient]:
    """The application answering a server error as a client sees it (500), instead of
    raising it into the test."""
    app = create_app(runtime=sqlite_runtime, announce=lambda _: None)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), [
    ("GET", f"/orders/{TOO_LARGE}"),
    ("POST", f"/orders/{TOO_LARGE}/submit"),
    ("GET", f"/deployments/{TOO_LARGE}"),
    ("GET", f"/deployments/{TOO_LARGE}/events"),
    ("DELETE", f"/tokens/{TOO_LARGE}"),
])
def test_a_number_no_row_can_have_is_the_callers_error_not_the_servers(
        server: TestClient, sqlite_runtime: Runtime, method: str, path: str) -> None:
    """Found by schemathesis: such a number reached the store and failed there (500)."""
    response = server.request(method, API + path,
                              headers=bearer(api_token(sqlite_runtime, "admin")))
    assert response.status_code in (404, 422), response.text
    error = response.json()["error"]
    assert BASE_KEYS <= set(error) and error["exit_code"] == 2, error


def test_a_configuration_text_yaml_cannot_read_is_422(
        server: TestClient, sqlite_runtime: Runtime) -> None:
    """Found by schemathesis: a control character made the YAML reader fail (500)."""
    response = server.post(f"{API}/config", json={"text": "hosts: []\n\x1f"},
                           headers=bearer(api_token(sqlite_runtime, "admin")))
    error = error_of(response, 422, "ConfigError", 2)
    assert "golive.yaml" in error["message"]


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/no-such-thing", None),  # 404
    ("DELETE", "/orders", None),  # 405
    ("POST", "/tokens", b'{"name": "\xff"}'),  # 400: not UTF-8
])
def test_the_frameworks_own_errors_come_in_the_same_shape(
        server: TestClient, sqlite_runtime: Runtime, method: str, path: str,
        body: bytes | None) -> None:
    """An unknown route, a method the route does not take, a body that cannot be read:
    the remote CLI reads every error answer the same way, so they share golive's shape."""
    headers = {**bearer(api_token(sqlite_runtime, "admin")), "Content-Type": "application/json"}
    response = server.request(method, API + path, headers=headers, content=body)
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) == {"error"}, response.text
    error = response.json()["error"]
    assert BASE_KEYS <= set(error) and error["exit_code"] == 2, error
