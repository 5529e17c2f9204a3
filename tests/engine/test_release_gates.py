"""Release windows and freeze dates on real releases (local hosts, artifact mode), with a
fixed clock: every service call gets an explicit aware ``now``. Refused outside a window
(naming the next opening), allowed inside, refused on a freeze day; queued with
``when_open`` and started by the scheduler once the window opens; re-queued when it closed
again; cancelled with the order; windows read in the project's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from golive.cli.main import main
from golive.errors import OutsideWindow
from golive.services import deploy as engine
from golive.services import requests, scheduler, users
from golive.services.orders import ItemRequest, get_order
from golive.services.runtime import Runtime
from golive.store.models import Deployment, OrderHistory
from golive.testing.world import (
    Repo,
    act,
    apply_config,
    commit,
    current_target,
    deploy,
    file_order,
    local_hosts,
    make_repo,
    rows,
)

BRANCH = "feature/x"
PATH = "srv/web"
BUILD = "mkdir -p dist && cp -r src/. dist/"
MEMBERS = [{"user": "alice", "roles": ["developer"]}, {"user": "tom", "roles": ["tester"]},
           {"user": "rita", "roles": ["releaser"]}]
WINDOW = "Mon-Thu 10:00-11:30"
SHANGHAI = "Asia/Shanghai"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant of March 2026 in UTC (2026-03-09 is a Monday)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def configure(runtime: Runtime, root: Path, **settings: Any) -> Repo:
    web = make_repo(root, "web", {"src/index.html": "<h1>shop</h1>\n"},
                    branches={BRANCH: {"src/feature.html": "<p>new</p>\n"}})
    stages = {name: {"mode": "artifact", "path": PATH, "hosts": [host]}
              for name, host in (("test", "t1"), ("staging", "s1"), ("prod", "p1"))}
    apply_config(runtime, root / "golive.yaml", {
        "hosts": local_hosts(root, ["t1", "s1", "p1"]),
        "projects": [{"name": "shop", "stages": ["test", "staging", "prod"],
                      "members": MEMBERS, **settings,
                      "services": [{"name": "web", "repo": web.url, "build": BUILD,
                                    "pack": ["dist"], "stages": stages}]}]})
    return web


def passed_staging(runtime: Runtime, root: Path, **settings: Any) -> int:
    """An order deployed on test and staging, passed on both: ready for release."""
    configure(runtime, root, **settings)
    order_id = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    assert deploy(runtime, order_id, "alice")[1]
    assert act(runtime, order_id, "pass", "tom") == "test:passed"
    assert deploy(runtime, order_id, "rita")[1]
    assert act(runtime, order_id, "pass", "tom") == "staging:passed"
    return order_id


def request_release(runtime: Runtime, order_id: int, now: datetime, *,
                    when_open: bool = False) -> Deployment:
    """Ask rita's release at ``now``; committed when it was not refused."""
    with runtime.store.session() as session:
        deployment = requests.request_deployment(
            session, order_id, users.acting_user(session, "rita"), action="release", now=now,
            when_open=when_open)
        session.commit()
        session.refresh(deployment)
        session.expunge(deployment)
    return deployment


def refused_release(runtime: Runtime, order_id: int, now: datetime) -> OutsideWindow:
    with pytest.raises(OutsideWindow) as caught:
        request_release(runtime, order_id, now)
    return caught.value


def state(runtime: Runtime, order_id: int) -> str:
    with runtime.store.session() as session:
        return get_order(session, order_id).state


def actions(runtime: Runtime, order_id: int) -> list[tuple[str, str]]:
    return [(h.actor, h.action) for h in rows(runtime, OrderHistory,
                                               OrderHistory.order_id == order_id)]


def prod_deployments(runtime: Runtime, order_id: int) -> list[Deployment]:
    return rows(runtime, Deployment, Deployment.order_id == order_id, Deployment.stage == "prod")


def test_refused_outside_the_window_then_released_inside(tmp_path: Path,
                                                         sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    order_id = passed_staging(runtime, tmp_path, release_windows=[WINDOW])
    history_before = actions(runtime, order_id)

    # Thursday 12:00: the week's last window closed at 11:30; the next is Monday 10:00
    refusal = refused_release(runtime, order_id, at(5, 12))
    assert refusal.message == (
        "project shop allows releases Mon-Thu 10:00-11:30 (UTC); it is outside them now. "
        "The next window opens Mon 2026-03-09 10:00 UTC: release then, or queue the release "
        "for it with --when-open")
    assert refusal.opens == at(9, 10)
    # the window's last minute is outside too (end excluded), and Sunday night as well
    assert refused_release(runtime, order_id, at(5, 11, 30)).opens == at(9, 10)
    assert refused_release(runtime, order_id, at(8, 23, 59)).opens == at(9, 10)
    assert state(runtime, order_id) == "staging:passed"
    assert prod_deployments(runtime, order_id) == []
    assert actions(runtime, order_id) == history_before

    deployment = request_release(runtime, order_id, at(9, 10, 30))
    assert (deployment.status, deployment.action, deployment.not_before) == (
        "pending", "release", None)
    assert state(runtime, order_id) == "prod:deploying"
    assert engine.run_deployment(runtime, deployment.id)
    assert state(runtime, order_id) == "done"
    assert current_target(tmp_path, "p1", PATH) is not None


def test_the_window_opening_minute_is_inside(tmp_path: Path, sqlite_runtime: Runtime) -> None:
    order_id = passed_staging(sqlite_runtime, tmp_path, release_windows=["Tue 14:00-15:00"])
    assert refused_release(sqlite_runtime, order_id, at(10, 13, 59)).opens == at(10, 14)
    deployment = request_release(sqlite_runtime, order_id, at(10, 14))
    assert deployment.status == "pending"
    assert engine.run_deployment(sqlite_runtime, deployment.id)
    assert state(sqlite_runtime, order_id) == "done"


def test_a_freeze_day_inside_a_window_is_refused(tmp_path: Path,
                                                 sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    order_id = passed_staging(runtime, tmp_path, release_windows=[WINDOW],
                              freeze=["2026-03-09", "2026-03-10..2026-03-11"])
    refusal = refused_release(runtime, order_id, at(9, 10, 30))  # Monday, in the window
    assert refusal.opens == at(12, 10)  # Tue and Wed are frozen too: Thursday's window
    assert refusal.message == (
        "project shop allows releases Mon-Thu 10:00-11:30 (UTC); frozen 2026-03-09, "
        "2026-03-10..2026-03-11; it is outside them now. The next window opens "
        "Thu 2026-03-12 10:00 UTC: release then, or queue the release for it with --when-open")
    assert refused_release(runtime, order_id, at(11, 11)).opens == at(12, 10)
    assert prod_deployments(runtime, order_id) == []
    assert state(runtime, order_id) == "staging:passed"

    deployment = request_release(runtime, order_id, at(12, 10, 1))
    assert engine.run_deployment(runtime, deployment.id)
    assert state(runtime, order_id) == "done"


def test_a_freeze_without_windows_blocks_only_the_frozen_days(
        tmp_path: Path, sqlite_runtime: Runtime) -> None:
    order_id = passed_staging(sqlite_runtime, tmp_path, freeze=["2026-12-24..2027-01-02"])
    refusal = refused_release(sqlite_runtime, order_id,
                              datetime(2026, 12, 31, 15, tzinfo=UTC))
    assert refusal.opens == datetime(2027, 1, 3, tzinfo=UTC)
    assert "The next window opens Sun 2027-01-03 00:00 UTC" in refusal.message
    assert "any time (UTC); frozen 2026-12-24..2027-01-02" in refusal.message
    deployment = request_release(sqlite_runtime, order_id, datetime(2026, 12, 23, 23, 59,
                                                                    tzinfo=UTC))
    assert deployment.status == "pending"


def test_queued_release_starts_when_the_window_opens(tmp_path: Path,
                                                     sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    order_id = passed_staging(runtime, tmp_path, release_windows=[WINDOW])

    queued = request_release(runtime, order_id, at(5, 12), when_open=True)
    assert (queued.status, queued.action, queued.stage) == ("queued", "release", "prod")
    assert queued.not_before == at(9, 10)
    assert (queued.requested_by, queued.runner) == ("rita", "")
    assert state(runtime, order_id) == "staging:passed"
    (note,) = rows(runtime, OrderHistory, OrderHistory.order_id == order_id,
                   OrderHistory.action == "release_queued")
    assert (note.actor, note.from_state, note.to_state) == ("rita", "staging:passed",
                                                            "staging:passed")
    assert note.reason == (f"deployment {queued.id} queued for the release window opening "
                           "2026-03-09 10:00 UTC")

    # before the window: nothing is due, nothing moves
    assert scheduler.start_due(runtime, at(9, 9, 59)) == []
    assert scheduler.start_due(runtime, at(6, 10, 30)) == []  # Friday 10:30 is no window
    (still,) = prod_deployments(runtime, order_id)
    assert (still.status, still.not_before) == ("queued", at(9, 10))
    assert state(runtime, order_id) == "staging:passed"

    started = scheduler.start_due(runtime, at(9, 10, 5))
    assert started == [scheduler.Started(queued.id, order_id, "started")]
    (running,) = prod_deployments(runtime, order_id)
    assert running.id == queued.id and running.status == "pending"
    assert state(runtime, order_id) == "prod:deploying"
    assert scheduler.start_due(runtime, at(9, 10, 6)) == []  # started once only

    assert engine.run_deployment(runtime, queued.id)
    assert state(runtime, order_id) == "done"
    assert prod_deployments(runtime, order_id)[0].status == "succeeded"
    assert current_target(tmp_path, "p1", PATH) is not None
    history = actions(runtime, order_id)
    assert history[-4:] == [("rita", "release_queued"), ("rita", "release"),
                            ("rita", "deployment"), ("system", "succeed")]


def test_a_window_that_closed_again_requeues(tmp_path: Path, sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    order_id = passed_staging(runtime, tmp_path, release_windows=[WINDOW])
    queued = request_release(runtime, order_id, at(5, 12), when_open=True)
    assert queued.not_before == at(9, 10)

    # the scheduler was down all Monday's window: at 11:45 it is due but closed again
    (outcome,) = scheduler.start_due(runtime, at(9, 11, 45))
    assert (outcome.deployment_id, outcome.outcome) == (queued.id, "requeued")
    assert "The next window opens Tue 2026-03-10 10:00 UTC" in outcome.message
    (requeued,) = prod_deployments(runtime, order_id)
    assert (requeued.status, requeued.not_before) == ("queued", at(10, 10))
    assert state(runtime, order_id) == "staging:passed"
    assert scheduler.start_due(runtime, at(10, 9)) == []

    (outcome,) = scheduler.start_due(runtime, at(10, 10))
    assert outcome.outcome == "started"
    assert engine.run_deployment(runtime, queued.id)
    assert state(runtime, order_id) == "done"


def test_cancelling_the_order_cancels_its_queued_release(tmp_path: Path,
                                                         sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    order_id = passed_staging(runtime, tmp_path, release_windows=[WINDOW])
    queued = request_release(runtime, order_id, at(5, 12), when_open=True)
    assert act(runtime, order_id, "cancel", "alice", reason="not this week") == "cancelled"
    (cancelled,) = prod_deployments(runtime, order_id)
    assert cancelled.id == queued.id
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert scheduler.start_due(runtime, at(9, 10, 5)) == []
    assert prod_deployments(runtime, order_id)[0].status == "cancelled"
    assert state(runtime, order_id) == "cancelled"
    assert current_target(tmp_path, "p1", PATH) is None


def test_queued_release_fails_when_it_cannot_start(tmp_path: Path,
                                                   sqlite_runtime: Runtime) -> None:
    """Main moved while the release waited: staging did not verify it, so the scheduler
    does not start the release; it ends failed with the reason in the history."""
    runtime = sqlite_runtime
    order_id = passed_staging(runtime, tmp_path, release_windows=[WINDOW])
    queued = request_release(runtime, order_id, at(5, 12), when_open=True)
    web = Repo(tmp_path / "repos" / "web.git", tmp_path / "clones" / "web")
    commit(web, "main", {"src/hotfix.html": "hot\n"}, "hotfix while queued")
    (outcome,) = scheduler.start_due(runtime, at(9, 10, 5))
    assert (outcome.deployment_id, outcome.outcome) == (queued.id, "failed")
    assert "hotfix while queued" in outcome.message
    (failed,) = prod_deployments(runtime, order_id)
    assert failed.status == "failed" and failed.error == outcome.message
    assert failed.finished_at is not None
    (note,) = rows(runtime, OrderHistory, OrderHistory.order_id == order_id,
                   OrderHistory.action == "release_not_started")
    assert (note.actor, note.reason) == ("scheduler", outcome.message)
    assert state(runtime, order_id) == "staging:passed"
    assert scheduler.start_due(runtime, at(9, 10, 6)) == []
    assert current_target(tmp_path, "p1", PATH) is None


def test_windows_are_read_in_the_project_time_zone(tmp_path: Path,
                                                   sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    # Shanghai is UTC+8 (no summer time): Mon-Thu 10:00-11:30 there is 02:00-03:30 UTC
    order_id = passed_staging(runtime, tmp_path, release_windows=[WINDOW],
                              release_timezone=SHANGHAI, freeze=["2026-03-10"])

    # Monday 10:30 UTC is 18:30 in Shanghai: closed; Tuesday is frozen there: Wednesday
    refusal = refused_release(runtime, order_id, at(9, 10, 30))
    assert refusal.message == (
        "project shop allows releases Mon-Thu 10:00-11:30 (Asia/Shanghai); frozen 2026-03-10; "
        "it is outside them now. The next window opens Wed 2026-03-11 10:00 CST: release "
        "then, or queue the release for it with --when-open")
    assert refusal.opens == at(11, 2)
    assert str(refusal.opens) == "2026-03-11 10:00:00+08:00"  # in the project's zone
    # Tuesday 02:30 UTC is inside the window's hours but on a frozen Shanghai day
    assert refused_release(runtime, order_id, at(10, 2, 30)).opens == at(11, 2)
    # Sunday 18:30 UTC is Monday 02:30 in Shanghai: before that day's window
    assert refused_release(runtime, order_id, at(8, 18, 30)).opens == at(9, 2)

    queued = request_release(runtime, order_id, at(9, 10, 30), when_open=True)
    assert queued.not_before == at(11, 2)
    (note,) = rows(runtime, OrderHistory, OrderHistory.order_id == order_id,
                   OrderHistory.action == "release_queued")
    assert note.reason.endswith("window opening 2026-03-11 10:00 CST")
    assert scheduler.start_due(runtime, at(11, 1, 59)) == []
    # an aware now in Shanghai's own zone is the same instant: 10:01 there
    shanghai_now = at(11, 2, 1).astimezone(ZoneInfo(SHANGHAI))
    (outcome,) = scheduler.start_due(runtime, shanghai_now)
    assert outcome.outcome == "started"
    assert engine.run_deployment(runtime, queued.id)
    assert state(runtime, order_id) == "done"


def test_a_release_inside_a_shanghai_window_goes_through(tmp_path: Path,
                                                         sqlite_runtime: Runtime) -> None:
    order_id = passed_staging(sqlite_runtime, tmp_path, release_windows=[WINDOW],
                              release_timezone=SHANGHAI)
    # Thursday 03:00 UTC is 11:00 in Shanghai: inside, although outside in UTC terms
    deployment = request_release(sqlite_runtime, order_id, at(12, 3))
    assert deployment.status == "pending"
    assert engine.run_deployment(sqlite_runtime, deployment.id)
    assert state(sqlite_runtime, order_id) == "done"


def test_golive_scheduler_once_starts_a_due_release_and_runs_it(
        tmp_path: Path, sqlite_runtime: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    """Queued on a freeze day for the next midnight (long past by the real clock): the
    command starts it with the real clock, runs it to done, and exits."""
    runtime = sqlite_runtime
    order_id = passed_staging(runtime, tmp_path, release_windows=["daily 00:00-24:00"],
                              freeze=["2026-03-10"])
    queued = request_release(runtime, order_id, at(10, 12), when_open=True)
    assert (queued.status, queued.not_before) == ("queued", at(11, 0))
    assert main(["scheduler", "--once"]) == 0
    out = capsys.readouterr().out
    assert f"deployment {queued.id} of order {order_id}: started" in out
    (released,) = prod_deployments(runtime, order_id)
    assert (released.id, released.status) == (queued.id, "succeeded")
    assert state(runtime, order_id) == "done"
