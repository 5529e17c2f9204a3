"""Lanes of a shared test stage: two orders side by side, each holding its lane until it
moves on, is cancelled or a tester releases it; take-overs and the board."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from golive.cli.main import main
from golive.errors import Busy, InputError, NotFound, PermissionDenied
from golive.services import lanes, occupancy, requests, users
from golive.services.deploy import run_deployment
from golive.services.history import history_of
from golive.services.orders import ItemRequest, get_order
from golive.services.runtime import Runtime
from golive.store.models import Deployment, LaneHold
from golive.testing.world import (
    act,
    apply_config,
    file_order,
    git,
    host_root,
    local_hosts,
    make_repo,
    rows,
)

PATH = "srv/web"
BRANCHES = {"a": "feature/a", "b": "feature/b", "c": "feature/c", "d": "feature/d"}
MEMBERS = [{"user": "alice", "roles": ["developer"]}, {"user": "tess", "roles": ["tester"]},
           {"user": "carol", "roles": ["developer", "tester"]},
           {"user": "rel", "roles": ["releaser"]}]


def world(tmp_path: Path, runtime: Runtime) -> dict[str, int]:
    """Service web: lanes t1 (h1) and t2 (h2) on test, s1 on staging; an order per branch."""
    repo = make_repo(tmp_path, "web", {"index.html": "main\n"},
                     branches={b: {"which.txt": f"{k}\n"} for k, b in BRANCHES.items()})
    apply_config(runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["h1", "h2", "s1"]),
        "projects": [{
            "name": "shop", "stages": ["test", "staging", "prod"], "members": MEMBERS,
            "services": [{"name": "web", "repo": repo.url, "stages": {
                "test": {"mode": "checkout", "path": PATH,
                         "lanes": {"t1": {"hosts": ["h1"]}, "t2": {"hosts": ["h2"]}}},
                "staging": {"mode": "checkout", "path": PATH, "hosts": ["s1"]},
            }}],
        }]})
    return {k: file_order(runtime, "alice", "shop", [ItemRequest("web", b)], title=f"order {k}")
            for k, b in BRANCHES.items()}


def serves(tmp_path: Path, host: str) -> tuple[str, str]:
    """(branch checked out, which.txt) of the working copy on a local host."""
    wc = host_root(tmp_path, host) / PATH
    return git(wc, "rev-parse", "--abbrev-ref", "HEAD"), (wc / "which.txt").read_text().strip()


def deployed(runtime: Runtime, order_id: int, by: str, **options: object) -> Deployment:
    """Request with ``options`` (lane=, take_over=, stage=), run it; the deployment row."""
    with runtime.store.session() as session:
        deployment = requests.request_deployment(session, order_id,
                                                 users.acting_user(session, by), **options)
        session.commit()
        deployment_id = deployment.id
    assert run_deployment(runtime, deployment_id), rows(runtime, Deployment)[-1].error
    (row,) = rows(runtime, Deployment, Deployment.id == deployment_id)
    return row


def refused(runtime: Runtime, order_id: int, by: str, error: type[Exception],
            **options: object) -> Exception:
    with runtime.store.session() as session, pytest.raises(error) as info:
        requests.request_deployment(session, order_id, users.acting_user(session, by),
                                    **options)
    return info.value


def held(runtime: Runtime) -> dict[tuple[str, str], int]:
    return {(h.stage, h.lane): h.order_id for h in rows(runtime, LaneHold)}


def state(runtime: Runtime, order_id: int) -> str:
    with runtime.store.session() as session:
        return get_order(session, order_id).state


def events(runtime: Runtime, order_id: int, action: str) -> list[str]:
    with runtime.store.session() as session:
        return [f"{h.actor}: {h.reason}" for h in history_of(session, order_id)
                if h.action == action]


def test_two_orders_side_by_side_then_a_take_over(tmp_path: Path,
                                                  sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    o = world(tmp_path, runtime)
    assert deployed(runtime, o["a"], "alice").lane == "t1"
    assert deployed(runtime, o["b"], "alice").lane == "t2"
    assert serves(tmp_path, "h1") == ("feature/a", "a")
    assert serves(tmp_path, "h2") == ("feature/b", "b")
    assert held(runtime) == {("test", "t1"): o["a"], ("test", "t2"): o["b"]}

    with runtime.store.session() as session:
        (board,) = occupancy.board(session, users.acting_user(session, "tess"), "shop")
    slots = {(s.stage, s.lane): s for s in board.slots}
    assert set(slots) == {("test", "t1"), ("test", "t2"), ("staging", "")}
    assert [(s.order_id, s.branch, s.title, s.held_by_order) for s in slots.values()] == [
        (o["a"], "feature/a", "order a", o["a"]), (o["b"], "feature/b", "order b", o["b"]),
        (None, "", "", None)]
    assert slots["test", "t1"].commit and slots["test", "t1"].since is not None
    assert [(x.order_id, x.state) for x in board.open_orders] == [
        (o["a"], "test:deployed"), (o["b"], "test:deployed"), (o["c"], "submitted"),
        (o["d"], "submitted")]

    # every lane is held: C is refused, naming both holders; nothing moved
    busy = refused(runtime, o["c"], "alice", Busy)
    assert isinstance(busy, Busy) and busy.order_id == o["a"]
    assert f"held by order {o['a']}" in busy.message and f"held by order {o['b']}" in busy.message
    busy = refused(runtime, o["c"], "alice", Busy, lane="t2")
    assert isinstance(busy, Busy) and busy.order_id == o["b"] and "--take-over" in busy.message
    # a developer may not take a lane over; a tester (here also a developer) may
    refused(runtime, o["c"], "alice", PermissionDenied, lane="t1", take_over=True)
    assert state(runtime, o["c"]) == "submitted"
    assert rows(runtime, Deployment, Deployment.order_id == o["c"]) == []
    assert held(runtime)[("test", "t1")] == o["a"]

    assert deployed(runtime, o["c"], "carol", lane="t1", take_over=True).lane == "t1"
    assert serves(tmp_path, "h1") == ("feature/c", "c")
    assert serves(tmp_path, "h2") == ("feature/b", "b")
    assert held(runtime) == {("test", "t1"): o["c"], ("test", "t2"): o["b"]}
    why = f"lane t1 of test taken over from order {o['a']} by carol"
    assert events(runtime, o["c"], "take_over") == [f"carol: {why}"]
    assert events(runtime, o["a"], "lane_lost") == [f"carol: {why} for order {o['c']}"]
    assert events(runtime, o["b"], "lane_lost") == []
    with runtime.store.session() as session:
        (board,) = occupancy.board(session, users.acting_user(session, "tess"), "shop")
    t1 = next(s for s in board.slots if s.lane == "t1")
    assert (t1.order_id, t1.branch, t1.held_by_order) == (o["c"], "feature/c", o["c"])


def test_a_lane_is_freed_by_moving_on_cancel_and_release(
    tmp_path: Path, sqlite_runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = sqlite_runtime
    o = world(tmp_path, runtime)
    deployed(runtime, o["a"], "alice")
    deployed(runtime, o["b"], "alice")

    # a pass keeps the lane; deploying on staging frees it
    assert act(runtime, o["a"], "pass", "tess") == "test:passed"
    assert held(runtime)[("test", "t1")] == o["a"]
    staging = deployed(runtime, o["a"], "rel", stage="staging")
    assert (staging.stage, staging.lane) == ("staging", "")
    assert serves(tmp_path, "s1") == ("feature/a", "a")
    assert held(runtime) == {("test", "t2"): o["b"]}

    # the freed lane goes to the next order; cancelling it frees the lane again
    assert deployed(runtime, o["c"], "alice").lane == "t1"
    assert serves(tmp_path, "h1") == ("feature/c", "c")
    assert act(runtime, o["c"], "cancel", "alice") == "cancelled"
    assert held(runtime) == {("test", "t2"): o["b"]}

    # a tester releases a lane (not a developer); the holder is told in its history
    code = main(["--as", "alice", "lane", "release", "test", "t2", "-p", "shop"])
    assert code == 1 and "needs the role tester or owner" in capsys.readouterr().err
    with runtime.store.session() as session:
        with pytest.raises(PermissionDenied):
            lanes.release_lane(session, "shop", "test", "t2",
                               users.acting_user(session, "alice"))
        assert lanes.release_lane(session, "shop", "test", "t2",
                                  users.acting_user(session, "tess")) == o["b"]
        session.commit()
    assert held(runtime) == {}
    assert events(runtime, o["b"], "lane_released") == ["tess: lane t2 of test released by tess"]
    assert state(runtime, o["b"]) == "test:deployed"  # the release moves no order
    with runtime.store.session() as session, pytest.raises(NotFound):
        lanes.release_lane(session, "shop", "test", "t2", users.acting_user(session, "tess"))

    # an order holding t1 cannot jump to t2 (nor to a lane that does not exist)
    assert deployed(runtime, o["d"], "alice").lane == "t1"
    error = refused(runtime, o["d"], "alice", InputError, lane="t2")
    assert f"order {o['d']} holds lane t1 of test" in str(error)
    error = refused(runtime, o["d"], "alice", InputError, lane="t9")
    assert "lane t9 is not one of test's lanes: t1, t2" in str(error)
    assert state(runtime, o["d"]) == "test:deployed"
    assert held(runtime) == {("test", "t1"): o["d"]}

    # the CLI shows the same: lane list, board, and a release by a tester
    assert main(["lane", "list", "-p", "shop", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(x["stage"], x["lane"], x["order"], x["held_by"]) for x in listed] == [
        ("test", "t1", o["d"], "alice")]
    assert main(["board", "-p", "shop", "--json"]) == 0
    (board,) = json.loads(capsys.readouterr().out)
    assert [(s["stage"], s["lane"], s["order_id"], s["branch"], s["held_by_order"])
            for s in board["slots"]] == [
        ("test", "t1", o["d"], "feature/d", o["d"]), ("test", "t2", o["b"], "feature/b", None),
        ("staging", "", o["a"], "feature/a", None)]
    assert main(["--as", "tess", "lane", "release", "test", "t1", "-p", "shop"]) == 0
    assert f"held by order {o['d']}" in capsys.readouterr().out
    assert held(runtime) == {}
