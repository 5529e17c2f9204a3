"""The board, the lanes and the notifications through the HTTP API: real deployments on
lanes of local hosts, real vendor robots on 127.0.0.1 as channels. Each operation's
answer, its refusals (403 naming the roles, 404, 422 naming the field), and no webhook
token or signing secret in what the API answers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from golive.api.app import create_app
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime
from golive.store.models import Notification
from golive.testing.receivers import Robot, robot
from golive.testing.server import api_error as error
from golive.testing.server import api_token, bearer
from golive.testing.world import apply_config, deploy, file_order, local_hosts, make_repo, rows

API = "/api/v1"
SECRET = "SEC-Pp91-signing"
MEMBERS = [{"user": "olga", "roles": ["owner"]}, {"user": "alice", "roles": ["developer"]},
           {"user": "tess", "roles": ["tester"]}, {"user": "rel", "roles": ["releaser"]}]
PATH = "srv/web"


@dataclass
class World:
    client: TestClient
    runtime: Runtime
    tokens: dict[str, str]
    orders: dict[str, int]

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, API + path, headers=bearer(self.tokens[who]),
                                   **kwargs)

    def ok(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(who, method, path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()


def setup(root: Path, runtime: Runtime, channels: list[dict[str, Any]]) -> dict[str, int]:
    """Project shop: service web on lanes t1 (h1) and t2 (h2) of test, s1 on staging; an
    order per branch a and b, filed by alice (project blog is bea's)."""
    repo = make_repo(root, "web", {"index.html": "main\n"},
                     branches={f"feature/{k}": {"which.txt": f"{k}\n"} for k in "ab"})
    apply_config(runtime, root / "golive.yaml", {
        "hosts": local_hosts(root, ["h1", "h2", "s1"]),
        "projects": [
            {"name": "shop", "stages": ["test", "staging", "prod"], "members": MEMBERS,
             "notify": channels,
             "services": [{"name": "web", "repo": repo.url, "stages": {
                 "test": {"mode": "checkout", "path": PATH,
                          "lanes": {"t1": {"hosts": ["h1"]}, "t2": {"hosts": ["h2"]}}},
                 "staging": {"mode": "checkout", "path": PATH, "hosts": ["s1"]}}}]},
            {"name": "blog", "members": [{"user": "bea", "roles": ["owner"]}],
             "services": [{"name": "blog", "repo": repo.url,
                           "stages": {"test": {"path": "srv/blog", "hosts": ["s1"]}}}]},
        ]})
    return {k: file_order(runtime, "alice", "shop", [ItemRequest("web", f"feature/{k}")],
                          title=f"order {k}") for k in "ab"}


def tokens(runtime: Runtime) -> dict[str, str]:
    return {n: api_token(runtime, n) for n in ("admin", "olga", "alice", "tess", "bea")}


# -- the board and the lanes ------------------------------------------------------------


@pytest.fixture
def lanes(api: TestClient, sqlite_runtime: Runtime, tmp_path: Path) -> World:
    """Order a deployed on lane t1 of test, order b on t2."""
    orders = setup(tmp_path, sqlite_runtime, [])
    for number in orders.values():
        assert deploy(sqlite_runtime, number, "alice")[1]
    return World(api, sqlite_runtime, tokens(sqlite_runtime), orders)


def test_the_board_shows_who_serves_each_lane(lanes: World) -> None:
    a, b = lanes.orders["a"], lanes.orders["b"]
    boards = lanes.ok("alice", "GET", "/board")
    assert [one["project"] for one in boards] == ["shop"]  # alice reads shop only
    (shop,) = boards
    assert shop["stages"] == ["test", "staging", "prod"]
    assert [(s["stage"], s["lane"], s["service"], s["order_id"], s["branch"],
             s["held_by_order"]) for s in shop["slots"]] == [
        ("test", "t1", "web", a, "feature/a", a), ("test", "t2", "web", b, "feature/b", b),
        ("staging", "", "web", None, "", None)]
    first = shop["slots"][0]
    assert first["title"] == "order a" and len(first["commit"]) == 40 and first["since"]
    assert [(o["order_id"], o["state"], o["main_moved"]) for o in shop["open_orders"]] == [
        (a, "test:deployed", []), (b, "test:deployed", [])]
    assert [one["project"] for one in lanes.ok("admin", "GET", "/board")] == ["blog", "shop"]
    assert lanes.ok("admin", "GET", "/board", params={"project": "shop"}) == boards

    refused = error(lanes.call("alice", "GET", "/board", params={"project": "blog"}), 403)
    assert refused["message"] == ("reading the board of blog needs the role developer or "
                                  "tester or releaser or owner; alice has no role in this "
                                  "project")
    assert error(lanes.call("alice", "GET", "/board", params={"project": "nope"}),
                 404)["message"] == "project nope does not exist"


def test_lanes_are_listed_and_a_tester_releases_one(lanes: World) -> None:
    a, b = lanes.orders["a"], lanes.orders["b"]
    held = lanes.ok("alice", "GET", "/projects/shop/lanes")
    assert [(h["stage"], h["lane"], h["order"], h["held_by"]) for h in held] == [
        ("test", "t1", a, "alice"), ("test", "t2", b, "alice")]
    assert all(h["since"] for h in held)
    assert error(lanes.call("bea", "GET", "/projects/shop/lanes"), 403)["kind"] == \
        "PermissionDenied"
    assert error(lanes.call("alice", "GET", "/projects/nope/lanes"), 404)["kind"] == "NotFound"

    release = "/projects/shop/lanes/test/t2/release"
    refused = error(lanes.call("alice", "POST", release), 403)
    assert refused["needed_roles"] == ["tester", "owner"]
    assert refused["message"] == ("releasing lane t2 of test needs the role tester or owner; "
                                  "alice has developer")
    done = lanes.ok("tess", "POST", release)
    assert done == {"project": "shop", "stage": "test", "lane": "t2", "order": b}
    assert [h["lane"] for h in lanes.ok("alice", "GET", "/projects/shop/lanes")] == ["t1"]
    told = [h for h in lanes.ok("alice", "GET", f"/orders/{b}/history")
            if h["action"] == "lane_released"]
    assert [(h["actor"], h["reason"]) for h in told] == [
        ("tess", "lane t2 of test released by tess")]
    assert error(lanes.call("tess", "POST", release), 404)["message"] == \
        "held lane of shop/test t2 does not exist"


# -- notifications ----------------------------------------------------------------------


@dataclass
class Robots:
    ding: Robot
    hook: Robot

    def secrets(self) -> list[str]:
        return [SECRET, self.ding.token, self.hook.token]


@pytest.fixture
def robots() -> Iterator[Robots]:
    with robot("dingtalk", SECRET) as ding, robot("webhook", SECRET) as hook:
        yield Robots(ding, hook)


@pytest.fixture
def quiet(sqlite_runtime: Runtime) -> Iterator[TestClient]:
    """The application without its background sender (as with GOLIVE_TASKS=celery), so
    that only ``notify.send`` delivers the outbox here."""
    settings = sqlite_runtime.settings.model_copy(update={"tasks": "celery"})
    runtime = dataclasses.replace(sqlite_runtime, settings=settings)
    with TestClient(create_app(runtime=runtime, announce=lambda _: None)) as client:
        yield client


@pytest.fixture
def notifying(quiet: TestClient, sqlite_runtime: Runtime, tmp_path: Path,
              robots: Robots) -> World:
    """Shop's channels: DingTalk ``ding`` (signed) and a generic webhook ``hook`` (signed);
    orders a and b submitted, their notifications queued."""
    orders = setup(tmp_path, sqlite_runtime, [
        {"type": "dingtalk", "name": "ding", "webhook": robots.ding.url, "secret": SECRET},
        {"type": "webhook", "name": "hook", "webhook": robots.hook.url, "secret": SECRET}])
    return World(quiet, sqlite_runtime, tokens(sqlite_runtime), orders)


def test_send_delivers_the_outbox_and_the_log_shows_no_secret(
        notifying: World, robots: Robots) -> None:
    assert {n.status for n in rows(notifying.runtime, Notification)} == {"queued"}
    robots.ding.fail_next(1, "http_500")  # its body echoes the URL, token and all
    sent = notifying.ok("alice", "POST", "/notifications/send")
    assert sent == {"tried": 4}  # two orders submitted, two channels
    assert len(robots.ding.messages) == 1 and len(robots.hook.messages) == 2

    response = notifying.call("alice", "GET", "/notifications", params={"project": "shop"})
    assert response.status_code == 200, response.text
    log = response.json()
    assert [(e["channel"], e["event"], e["ok"]) for e in log] == [
        ("ding", "submitted", False), ("hook", "submitted", True),
        ("ding", "submitted", True), ("hook", "submitted", True)]
    failed = log[0]
    assert (failed["status"], failed["type"], failed["notification_status"],
            failed["attempts"]) == (500, "dingtalk", "queued", 1)
    assert "500" in failed["error"]
    for secret in robots.secrets():
        assert secret not in response.text

    orders = notifying.orders
    only_b = notifying.ok("alice", "GET", "/notifications",
                          params={"project": "shop", "order": orders["b"]})
    assert {e["order"] for e in only_b} == {orders["b"]} and len(only_b) == 2
    newest = notifying.ok("alice", "GET", "/notifications", params={"project": "shop",
                                                                     "limit": 1})
    assert newest == log[-1:]
    assert error(notifying.call("alice", "GET", "/notifications",
                                params={"project": "shop", "limit": 0}), 422)["message"] == \
        "limit 0: write a number from 1 to 1000"
    missing = error(notifying.call("alice", "GET", "/notifications"), 422)
    assert [f["path"] for f in missing["fields"]] == ["query.project"]
    assert error(notifying.call("bea", "GET", "/notifications", params={"project": "shop"}),
                 403)["kind"] == "PermissionDenied"
    assert error(notifying.call("bea", "GET", "/notifications", params={"project": "nope"}),
                 404)["kind"] == "NotFound"


def test_a_test_message_answers_with_the_vendors_reply(
        notifying: World, robots: Robots) -> None:
    answer = notifying.ok("olga", "POST", "/channels/shop/ding/test")
    assert answer["channel"] == "ding"
    assert (answer["ok"], answer["status"], answer["error"]) == (True, 200, "")
    (message,) = robots.ding.messages
    assert message["markdown"]["title"] == "golive: test message"

    robots.ding.fail_next(1, "bad_sign")
    refused = notifying.ok("olga", "POST", "/channels/shop/ding/test")
    assert refused["ok"] is False and "310000" in refused["error"]
    robots.hook.fail_next(1, "http_500")
    response = notifying.call("olga", "POST", "/channels/shop/hook/test")
    assert response.status_code == 200 and response.json()["status"] == 500
    for secret in robots.secrets():
        assert secret not in response.text

    denied = error(notifying.call("tess", "POST", "/channels/shop/ding/test"), 403)
    assert denied["needed_roles"] == ["owner"]
    assert denied["message"] == "testing channel ding needs the role owner; tess has tester"
    assert error(notifying.call("olga", "POST", "/channels/shop/nope/test"),
                 404)["message"] == "channel of shop nope does not exist"
    assert len(robots.ding.messages) == 1  # the refused ones sent nothing that was accepted
