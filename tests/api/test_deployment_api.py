"""Deployments through the REST API on a real world (a git repository, two local hosts):
plan, deploy, follow by polling, logs, a redeploy and a rollback; refusals as 409 with the
services' own words, and 403 for a user without a role."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from golive.api.schemas.deployments import ENDED
from golive.errors import TransitionRefused
from golive.services import deploy as deploy_service
from golive.services import requests
from golive.services.orders import get_order
from golive.services.runtime import Runtime
from golive.services.users import acting_user
from golive.store.models import Deployment, LogLine
from golive.testing.server import api_token, bearer
from golive.testing.world import (
    Repo,
    apply_config,
    commit,
    current_target,
    local_hosts,
    make_repo,
    rows,
)

BRANCH = "feature/x"
PATH = "srv/shop"


@dataclass(frozen=True)
class World:
    root: Path
    repo: Repo


@pytest.fixture
def world(tmp_path: Path, sqlite_runtime: Runtime) -> World:
    """Project shop (test, prod), service shop in artifact mode on hosts h1 and h2; alice
    developer, tom tester, rita releaser; mallory has no role."""
    repo = make_repo(tmp_path, "shop", {"src/index.html": "v1\n"},
                     branches={BRANCH: {"src/index.html": "v2\n"}})
    stage = {"mode": "artifact", "path": PATH, "hosts": ["h1", "h2"]}
    apply_config(sqlite_runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["h1", "h2"]),
        "projects": [{
            "name": "shop", "stages": ["test", "prod"],
            "members": [{"user": "alice", "roles": ["developer"]},
                        {"user": "tom", "roles": ["tester"]},
                        {"user": "rita", "roles": ["releaser"]}],
            "services": [{"name": "shop", "repo": repo.url, "build": "cp -r src dist",
                          "pack": ["dist"], "stages": {"test": stage, "prod": stage}}],
        }]})
    return World(tmp_path, repo)


@pytest.fixture
def tokens(world: World, sqlite_runtime: Runtime) -> dict[str, dict[str, str]]:
    return {name: bearer(api_token(sqlite_runtime, name))
            for name in ("admin", "alice", "tom", "rita", "mallory")}


def submitted_order(api: TestClient, alice: dict[str, str]) -> int:
    created = api.post("/api/v1/orders", headers=alice, json={
        "project": "shop", "items": [{"service": "shop", "branch": BRANCH}]})
    assert created.status_code == 201, created.text
    number = int(created.json()["id"])
    assert api.post(f"/api/v1/orders/{number}/submit", headers=alice).status_code == 200
    return number


def ended(api: TestClient, headers: dict[str, str], deployment_id: int,
          timeout: float = 60.0) -> dict[str, Any]:
    """GET /deployments/{id} until the deployment has ended."""
    deadline = time.monotonic() + timeout
    while True:
        answer = api.get(f"/api/v1/deployments/{deployment_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        view: dict[str, Any] = answer.json()
        if view["status"] in ENDED:
            return view
        assert time.monotonic() < deadline, f"deployment {deployment_id} still {view['status']}"
        time.sleep(0.1)


def test_plan_deploy_logs_redeploy_and_rollback(
        api: TestClient, world: World, sqlite_runtime: Runtime,
        tokens: dict[str, dict[str, str]]) -> None:
    alice, rita = tokens["alice"], tokens["rita"]
    number = submitted_order(api, alice)

    answer = api.get(f"/api/v1/orders/{number}/plan", headers=alice)
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    with sqlite_runtime.store.session() as session:
        order = get_order(session, number)
        expected = deploy_service.build_plan(sqlite_runtime, session, order, "test",
                                             "iterative", estimate_transfer=True).to_dict()
    assert plan == {**expected, "language": "en"}  # the domain's plan, field for field
    assert [(s["service"], s["action"], s["batches"]) for s in plan["services"]] == [
        ("shop", "deploy", [["h1", "h2"]])]
    # no release on the hosts yet: the whole archive, to both hosts (issue 12's plan bytes)
    assert plan["services"][0]["transfer"]["method"] == "full"
    assert plan["services"][0]["transfer"]["hosts"] == 2

    answer = api.post(f"/api/v1/orders/{number}/deploy", headers=alice, json={})
    assert answer.status_code == 202, answer.text
    started = answer.json()
    assert started["status"] == "pending" and started["order_state"] == "test:deploying"
    first = ended(api, alice, started["id"])
    assert first["status"] == "succeeded", first["error"]
    assert first["order_state"] == "test:deployed" and first["kind"] == "iterative"
    assert {(s["host"], s["status"]) for s in first["steps"] if s["step"] == "switch"} == {
        ("h1", "done"), ("h2", "done")}
    for host in ("h1", "h2"):
        assert current_target(world.root, host, PATH) == f"releases/{first['release_id']}"

    answer = api.get(f"/api/v1/orders/{number}/logs", headers=alice)
    assert answer.status_code == 200
    logs = answer.json()
    stored = rows(sqlite_runtime, LogLine, LogLine.deployment_id == first["id"])
    assert logs["deployment"] == first["id"]
    assert [line["text"] for line in logs["lines"]] == [line.text for line in stored]
    assert logs["lines"][-1]["text"] == f"iterative deployment of order {number} on test " \
                                        "succeeded"

    # a fix on the branch: the redeploy moves the service, then a releaser rolls it back
    commit(world.repo, BRANCH, {"src/index.html": "v3\n"})
    second = ended(api, alice, api.post(f"/api/v1/orders/{number}/deploy", headers=alice,
                                        json={}).json()["id"])
    assert second["status"] == "succeeded" and second["release_id"] != first["release_id"]

    refused = api.post(f"/api/v1/orders/{number}/rollback", headers=alice, json={})
    assert refused.status_code == 403
    assert refused.json()["error"]["needed_roles"] == ["releaser", "owner"]
    answer = api.post(f"/api/v1/orders/{number}/rollback", headers=rita, json={})
    assert answer.status_code == 202, answer.text
    back = ended(api, rita, answer.json()["id"])
    assert back["status"] == "succeeded" and back["kind"] == "rollback"
    assert back["order_state"] == "test:rolled_back"
    assert current_target(world.root, "h1", PATH) == f"releases/{first['release_id']}"
    answer = api.get(f"/api/v1/orders/{number}/logs", headers=rita)
    assert any("SQL is not undone" in line["text"] for line in answer.json()["lines"])
    answer = api.get(f"/api/v1/orders/{number}/logs", headers=rita,
                     params={"deployment": first["id"]})
    assert answer.json() == logs

    listed = api.get(f"/api/v1/orders/{number}/deployments", headers=tokens["tom"]).json()
    assert [(d["id"], d["kind"], d["status"]) for d in listed] == [
        (first["id"], "iterative", "succeeded"), (second["id"], "iterative", "succeeded"),
        (back["id"], "rollback", "succeeded")]


def test_a_refused_deploy_is_409_with_the_refusal_and_changes_nothing(
        api: TestClient, world: World, sqlite_runtime: Runtime,
        tokens: dict[str, dict[str, str]]) -> None:
    alice = tokens["alice"]
    number = submitted_order(api, alice)
    with sqlite_runtime.store.session() as session, pytest.raises(TransitionRefused) as why:
        requests.request_deployment(session, number, acting_user(session, "alice"),
                                    stage="prod")

    answer = api.post(f"/api/v1/orders/{number}/deploy", headers=alice,
                      json={"stage": "prod"})
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error == {"kind": "TransitionRefused", "message": why.value.message,
                     "exit_code": 1}
    assert "not on prod" in error["message"]
    answer = api.post(f"/api/v1/orders/{number}/release", headers=tokens["rita"], json={})
    assert answer.status_code == 409
    assert "release deploys on the last stage prod" in answer.json()["error"]["message"]
    answer = api.post(f"/api/v1/orders/{number}/resume", headers=alice)
    assert answer.status_code == 422
    assert answer.json()["error"]["message"] == (
        f"order {number} has no deployment paused between batches")

    answer = api.post(f"/api/v1/orders/{number}/deploy", headers=alice,
                      json={"wait": -1, "hosts": [""], "colour": "red"})
    assert answer.status_code == 422
    assert {f["path"] for f in answer.json()["error"]["fields"]} == {
        "body.wait", "body.hosts.0", "body.colour"}
    answer = api.post(f"/api/v1/orders/{number}/deploy", headers=alice,
                      json={"hosts": ["h9"]})
    assert answer.status_code == 422
    assert "--hosts names h9, not a host of this order on test" in answer.json()[
        "error"]["message"]

    assert rows(sqlite_runtime, Deployment) == []
    shown = api.get(f"/api/v1/orders/{number}", headers=alice).json()
    assert shown["state"] == "submitted"
    assert api.get(f"/api/v1/orders/{number}/deployments", headers=alice).json() == []
    answer = api.get(f"/api/v1/orders/{number}/logs", headers=alice)
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == f"deployment of order {number} does not exist"


def test_a_user_without_a_role_is_refused_403(
        api: TestClient, world: World, tokens: dict[str, dict[str, str]]) -> None:
    alice, mallory = tokens["alice"], tokens["mallory"]
    number = submitted_order(api, alice)
    deployment = ended(api, tokens["admin"], api.post(
        f"/api/v1/orders/{number}/deploy", headers=tokens["admin"], json={}).json()["id"])
    assert deployment["status"] == "succeeded" and deployment["requested_by"] == "admin"

    for method, path, body in (
            ("POST", f"/orders/{number}/deploy", {}),
            ("POST", f"/orders/{number}/rollback", {}),
            ("GET", f"/orders/{number}/plan", None),
            ("GET", f"/orders/{number}/logs", None),
            ("GET", f"/orders/{number}/deployments", None),
            ("GET", f"/deployments/{deployment['id']}", None)):
        answer = api.request(method, f"/api/v1{path}", headers=mallory, json=body)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["error"]["kind"] == "PermissionDenied"
    assert api.get(f"/api/v1/deployments/{deployment['id']}").status_code == 401
    answer = api.get("/api/v1/deployments/999", headers=alice)
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == "deployment 999 does not exist"
