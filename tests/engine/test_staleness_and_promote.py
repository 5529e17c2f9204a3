"""The staleness guard, auto_promote / auto_release, what a release leaves in git (main,
tag, deleted branch), "main moved" on the board, and the order's history through the CLI.
Real git repositories, local hosts, the default SQLite store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from golive.cli.main import main
from golive.errors import PermissionDenied, Unverified
from golive.services import deploy as engine
from golive.services import occupancy, promote, requests, scheduler, users
from golive.services.orders import ItemRequest, get_order
from golive.services.runtime import Runtime
from golive.store.models import CommitLedger, Deployment, LogLine, OrderHistory, Service
from golive.testing.world import (
    Repo,
    act,
    apply_config,
    commit,
    deploy,
    file_order,
    git,
    host_root,
    local_hosts,
    make_repo,
    rows,
)

BRANCH = "feature/x"
OTHER = "feature/y"
PATH = "srv/web"
API_PATH = "srv/api"
BUILD = "mkdir -p dist && cp -r src/. dist/"
MEMBERS = [{"user": "alice", "roles": ["developer"]}, {"user": "tom", "roles": ["tester"]},
           {"user": "rita", "roles": ["releaser"]}]
HOTFIX = "hotfix: round prices half up"


def configure(runtime: Runtime, root: Path, **settings: Any) -> tuple[Repo, Repo]:
    """Project shop (test, staging, prod on hosts t1, s1, p1) with services web and api."""
    web = make_repo(root, "web", {"src/index.html": "<h1>shop</h1>\n"},
                    branches={BRANCH: {"src/feature.html": "<p>x</p>\n"},
                              OTHER: {"src/other.html": "<p>y</p>\n"}})
    api = make_repo(root, "api", {"src/api.txt": "v1\n"},
                    branches={"feature/api": {"src/api.txt": "v2\n"}})

    def service(name: str, repo: Repo, path: str) -> dict[str, Any]:
        stages = {stage: {"mode": "artifact", "path": path, "hosts": [host]}
                  for stage, host in (("test", "t1"), ("staging", "s1"), ("prod", "p1"))}
        return {"name": name, "repo": repo.url, "build": BUILD, "pack": ["dist"],
                "stages": stages}

    apply_config(runtime, root / "golive.yaml", {
        "hosts": local_hosts(root, ["t1", "s1", "p1"]),
        "projects": [{"name": "shop", "stages": ["test", "staging", "prod"],
                      "members": MEMBERS, **settings,
                      "services": [service("web", web, PATH), service("api", api, API_PATH)]}]})
    return web, api


def to_staging_passed(runtime: Runtime, order_id: int) -> None:
    assert deploy(runtime, order_id, "alice")[1]
    assert act(runtime, order_id, "pass", "tom") == "test:passed"
    assert deploy(runtime, order_id, "rita")[1]
    assert act(runtime, order_id, "pass", "tom") == "staging:passed"


def release(runtime: Runtime, order_id: int, by: str, **options: Any) -> Deployment:
    """Ask a release (committed unless refused); the detached deployment."""
    with runtime.store.session() as session:
        deployment = requests.request_deployment(
            session, order_id, users.acting_user(session, by), action="release", **options)
        session.commit()
        session.refresh(deployment)
        session.expunge(deployment)
    return deployment


def after_pass(runtime: Runtime, order_id: int, by: str,
               now: datetime | None = None) -> tuple[Deployment | None, str]:
    with runtime.store.session() as session:
        promotion = promote.after_pass(session, order_id, users.acting_user(session, by), now)
        session.commit()
        started = promotion.deployment
        if started is not None:
            session.refresh(started)
            session.expunge(started)
    return started, promotion.message


def state(runtime: Runtime, order_id: int) -> str:
    with runtime.store.session() as session:
        return get_order(session, order_id).state


def history(runtime: Runtime, order_id: int) -> list[OrderHistory]:
    return rows(runtime, OrderHistory, OrderHistory.order_id == order_id)


def stage_deployments(runtime: Runtime, order_id: int, stage: str) -> list[Deployment]:
    return rows(runtime, Deployment, Deployment.order_id == order_id, Deployment.stage == stage)


def ledger_row(runtime: Runtime, order_id: int, service: str, stage: str) -> CommitLedger:
    (svc,) = rows(runtime, Service, Service.name == service)
    (row,) = rows(runtime, CommitLedger, CommitLedger.order_id == order_id,
                  CommitLedger.service_id == svc.id, CommitLedger.stage == stage)
    return row


def log_of(runtime: Runtime, deployment_id: int) -> str:
    return "\n".join(line.text for line in rows(runtime, LogLine,
                                                LogLine.deployment_id == deployment_id))


def heads(repo: Repo) -> list[str]:
    return git(repo.origin, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()


def served(root: Path, host: str, rel: str) -> Path:
    return host_root(root, host) / PATH / "current" / "dist" / rel


def short_and_subject(line: str, full: str) -> str:
    """``line`` is "<short sha> <subject>" of the commit ``full``; the subject."""
    sha, _, subject = line.partition(" ")
    assert len(sha) >= 7 and full.startswith(sha), (line, full)
    return subject


# --- the staleness guard --------------------------------------------------------------------


def test_a_release_after_main_moved_is_refused_then_accepted_by_a_releaser(
        tmp_path: Path, sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    web, _ = configure(runtime, tmp_path)
    order_id = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    to_staging_passed(runtime, order_id)
    verified = ledger_row(runtime, order_id, "web", "staging").deployed_commit
    hot = commit(web, "main", {"src/hotfix.html": "hot\n"}, HOTFIX)
    history_before = [(h.actor, h.action) for h in history(runtime, order_id)]

    with pytest.raises(Unverified) as caught:
        release(runtime, order_id, "rita")
    (line,) = caught.value.commits["web"]
    assert list(caught.value.commits) == ["web"]
    assert short_and_subject(line, hot) == HOTFIX
    assert caught.value.message == (
        f"order {order_id}: main moved since staging verified it — web: 1 commit(s) on main "
        f"not verified on staging: {line}. Verify them: `golive order deploy {order_id} "
        "--stage staging` (artifact mode merges the new main; in checkout mode merge main "
        "into the branch first), or release with --accept-unverified (releaser; recorded)")
    assert verified[:7] not in caught.value.message

    # a developer may not accept it (nor release at all); nothing is recorded
    with pytest.raises(PermissionDenied) as denied:
        release(runtime, order_id, "alice", accept_unverified=True)
    assert "needs the role releaser or owner; alice has developer" in denied.value.message
    assert state(runtime, order_id) == "staging:passed"
    assert stage_deployments(runtime, order_id, "prod") == []
    assert [(h.actor, h.action) for h in history(runtime, order_id)] == history_before

    deployment = release(runtime, order_id, "rita", accept_unverified=True)
    assert (deployment.accept_unverified_by, deployment.status) == ("rita", "pending")
    (accepted,) = [h for h in history(runtime, order_id) if h.action == "accept_unverified"]
    assert accepted.actor == "rita"
    assert accepted.reason == (f"released without verifying on staging: web: "
                               f"{line.split()[0]}")
    assert engine.run_deployment(runtime, deployment.id)
    assert state(runtime, order_id) == "done"
    # prod got main with the hotfix merged; main is that merge, the branch is kept
    merge = web.head("main")
    assert web.parents(merge) == [hot, web.head(BRANCH)]
    assert served(tmp_path, "p1", "hotfix.html").read_text() == "hot\n"
    assert git(web.origin, "rev-parse", f"refs/tags/golive/{order_id}^{{commit}}") == merge
    assert BRANCH in heads(web)


def test_a_redeploy_on_staging_verifies_the_new_main(tmp_path: Path,
                                                      sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    web, _ = configure(runtime, tmp_path)
    order_id = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    to_staging_passed(runtime, order_id)
    hot = commit(web, "main", {"src/hotfix.html": "hot\n"}, HOTFIX)
    with pytest.raises(Unverified):
        release(runtime, order_id, "rita")

    # as the refusal says: staging, asked for by name, is deployed again (from
    # staging:passed) and merges the new main there
    redeploy_id, ok = deploy(runtime, order_id, "rita", stage="staging")
    assert ok
    entry = ledger_row(runtime, order_id, "web", "staging")
    assert (entry.deployment_id, entry.main_commit) == (redeploy_id, hot)
    assert served(tmp_path, "s1", "hotfix.html").read_text() == "hot\n"
    assert act(runtime, order_id, "pass", "tom") == "staging:passed"

    deployment = release(runtime, order_id, "rita")
    assert deployment.accept_unverified_by == ""
    assert engine.run_deployment(runtime, deployment.id)
    assert state(runtime, order_id) == "done"
    assert "accept_unverified" not in [h.action for h in history(runtime, order_id)]
    assert web.head("main") == entry.deployed_commit  # staging's merge, as it was verified


# --- auto_promote and auto_release ----------------------------------------------------------


def test_without_auto_promote_a_pass_starts_nothing(tmp_path: Path,
                                                    sqlite_runtime: Runtime) -> None:
    configure(sqlite_runtime, tmp_path)
    order_id = file_order(sqlite_runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    assert deploy(sqlite_runtime, order_id, "alice")[1]
    assert act(sqlite_runtime, order_id, "pass", "tom") == "test:passed"
    assert after_pass(sqlite_runtime, order_id, "tom") == (None, "")
    assert state(sqlite_runtime, order_id) == "test:passed"
    assert stage_deployments(sqlite_runtime, order_id, "staging") == []


def test_auto_promote_deploys_on_staging_and_stops_before_prod(
        tmp_path: Path, sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    configure(runtime, tmp_path, auto_promote=True)
    order_id = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    assert deploy(runtime, order_id, "alice")[1]
    assert act(runtime, order_id, "pass", "tom") == "test:passed"

    started, message = after_pass(runtime, order_id, "tom")
    assert started is not None
    assert message == f"auto_promote: deployment {started.id} on staging started"
    assert (started.stage, started.action, started.policy, started.requested_by,
            started.status) == ("staging", "deploy", "auto_promote", "tom", "pending")
    assert state(runtime, order_id) == "staging:deploying"
    moved = history(runtime, order_id)[-2:]
    assert [(h.actor, h.action, h.to_state, h.reason) for h in moved] == [
        ("auto_promote", "deploy", "staging:deploying", "after tom's pass"),
        ("auto_promote", "deployment", "staging:deploying",
         f"deployment {started.id} iterative on staging")]
    assert engine.run_deployment(runtime, started.id)
    assert state(runtime, order_id) == "staging:deployed"
    assert served(tmp_path, "s1", "feature.html").read_text() == "<p>x</p>\n"

    assert act(runtime, order_id, "pass", "tom") == "staging:passed"
    assert after_pass(runtime, order_id, "tom") == (
        None, "prod is released by a releaser (auto_release is off)")
    assert state(runtime, order_id) == "staging:passed"
    assert stage_deployments(runtime, order_id, "prod") == []


def test_auto_release_releases_after_the_pass_on_staging(tmp_path: Path,
                                                         sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    web, _ = configure(runtime, tmp_path, auto_promote=True, auto_release=True)
    order_id = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    assert deploy(runtime, order_id, "alice")[1]
    act(runtime, order_id, "pass", "tom")
    started, _ = after_pass(runtime, order_id, "tom")
    assert started is not None and engine.run_deployment(runtime, started.id)
    assert act(runtime, order_id, "pass", "tom") == "staging:passed"

    released, message = after_pass(runtime, order_id, "tom")
    assert released is not None
    assert message == f"auto_release: deployment {released.id} on prod started"
    assert (released.stage, released.action, released.policy, released.status) == (
        "prod", "release", "auto_release", "pending")
    assert engine.run_deployment(runtime, released.id)
    assert state(runtime, order_id) == "done"
    assert ("auto_release", "release") in [(h.actor, h.action) for h in history(runtime,
                                                                                 order_id)]
    assert served(tmp_path, "p1", "feature.html").read_text() == "<p>x</p>\n"
    assert web.head("main") == ledger_row(runtime, order_id, "web", "prod").deployed_commit


def test_auto_release_outside_the_window_is_queued(tmp_path: Path,
                                                   sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    configure(runtime, tmp_path, auto_promote=True, auto_release=True,
              release_windows=["Mon-Thu 10:00-11:30"])
    order_id = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    thursday_noon = datetime(2026, 3, 5, 12, tzinfo=UTC)
    monday = datetime(2026, 3, 9, 10, tzinfo=UTC)
    assert deploy(runtime, order_id, "alice")[1]
    act(runtime, order_id, "pass", "tom")
    # staging is no release: the window does not hold auto_promote back
    started, _ = after_pass(runtime, order_id, "tom", now=thursday_noon)
    assert started is not None and started.status == "pending"
    assert engine.run_deployment(runtime, started.id)
    act(runtime, order_id, "pass", "tom")

    queued, message = after_pass(runtime, order_id, "tom", now=thursday_noon)
    assert queued is not None
    assert message == f"auto_release: deployment {queued.id} on prod queued"
    assert (queued.status, queued.not_before, queued.policy) == ("queued", monday,
                                                                 "auto_release")
    assert state(runtime, order_id) == "staging:passed"
    note = history(runtime, order_id)[-1]
    assert (note.actor, note.action) == ("auto_release", "release_queued")

    assert scheduler.start_due(runtime, thursday_noon) == []
    (outcome,) = scheduler.start_due(runtime, monday)
    assert (outcome.deployment_id, outcome.outcome) == (queued.id, "started")
    assert engine.run_deployment(runtime, queued.id)
    assert state(runtime, order_id) == "done"


def test_auto_release_refused_by_the_staleness_guard_keeps_the_pass(
        tmp_path: Path, sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    web, _ = configure(runtime, tmp_path, auto_promote=True, auto_release=True)
    order_id = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    assert deploy(runtime, order_id, "alice")[1]
    act(runtime, order_id, "pass", "tom")
    started, _ = after_pass(runtime, order_id, "tom")
    assert started is not None and engine.run_deployment(runtime, started.id)
    commit(web, "main", {"src/hotfix.html": "hot\n"}, HOTFIX)
    act(runtime, order_id, "pass", "tom")

    refused, message = after_pass(runtime, order_id, "tom")
    assert refused is None
    assert message.startswith(f"auto_release did not start: order {order_id}: main moved "
                              "since staging verified it")
    assert HOTFIX in message
    assert state(runtime, order_id) == "staging:passed"
    assert stage_deployments(runtime, order_id, "prod") == []
    note = history(runtime, order_id)[-1]
    assert (note.actor, note.action) == ("auto_release", "auto_refused")
    assert HOTFIX in note.reason


# --- what a release leaves in git, and on the board -----------------------------------------


def test_a_release_tags_main_and_deletes_the_branch(tmp_path: Path,
                                                    sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    web, _ = configure(runtime, tmp_path, delete_branch_after_release=True)
    main_before = web.head("main")
    branch_head = web.head(BRANCH)
    order_id = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    to_staging_passed(runtime, order_id)
    assert BRANCH in heads(web)  # nothing is deleted before the last stage

    release_id, ok = deploy(runtime, order_id, "rita", action="release")
    assert ok
    assert state(runtime, order_id) == "done"
    merge = ledger_row(runtime, order_id, "web", "prod").deployed_commit
    assert web.head("main") == merge
    assert web.parents(merge) == [main_before, branch_head]
    assert git(web.origin, "rev-parse", f"refs/tags/golive/{order_id}^{{commit}}") == merge
    assert sorted(heads(web)) == ["feature/y", "main"]
    assert f"branch {BRANCH} deleted on the remote" in log_of(runtime, release_id)


def test_main_moved_flags_other_open_orders_of_the_service(tmp_path: Path,
                                                           sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    configure(runtime, tmp_path)
    released = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)], "x")
    waiting = file_order(runtime, "alice", "shop", [ItemRequest("web", OTHER)], "y")
    elsewhere = file_order(runtime, "alice", "shop", [ItemRequest("api", "feature/api")], "api")
    assert deploy(runtime, waiting, "alice")[1]
    assert deploy(runtime, elsewhere, "alice")[1]

    def flags() -> dict[int, list[str]]:
        with runtime.store.session() as session:
            (board,) = occupancy.board(session, users.acting_user(session, "tom"), "shop")
        return {o.order_id: o.main_moved for o in board.open_orders}

    to_staging_passed(runtime, released)
    assert flags() == {released: [], waiting: [], elsewhere: []}
    assert deploy(runtime, released, "rita", action="release")[1]
    merge = ledger_row(runtime, released, "web", "prod").deployed_commit

    # the released order is done (off the board); the other web order is flagged
    assert flags() == {waiting: [f"web: main moved by order {released} ({merge[:10]})"],
                       elsewhere: []}
    # once redeployed (on the new main) it is not flagged any more
    assert deploy(runtime, waiting, "alice", kind="full")[1]
    assert ledger_row(runtime, waiting, "web", "test").main_commit == merge
    assert flags() == {waiting: [], elsewhere: []}


# --- the history through the CLI ------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_order_history_json_lists_transitions_and_events_in_order(
        tmp_path: Path, sqlite_runtime: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    runtime = sqlite_runtime
    web, _ = configure(runtime, tmp_path, auto_promote=True, auto_release=True)
    order_id = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    assert deploy(runtime, order_id, "alice")[1]
    number = str(order_id)

    code, out, err = cli(capsys, "--as", "tom", "order", "pass", number)
    assert code == 0, err
    said = " ".join(out.split())
    assert f"order {order_id}: pass → test:passed" in said
    assert f"order {order_id}: auto_promote: deployment" in said
    assert "on staging started" in said and f"order {order_id} is staging:deployed" in said
    assert state(runtime, order_id) == "staging:deployed"

    commit(web, "main", {"src/hotfix.html": "hot\n"}, HOTFIX)
    code, out, err = cli(capsys, "--as", "tom", "order", "pass", number)
    assert code == 0, err
    said = " ".join(out.split())  # the console wraps long lines
    assert f"order {order_id}: auto_release did not start: order {order_id}: main moved" in said
    assert HOTFIX in said
    assert state(runtime, order_id) == "staging:passed"

    code, out, err = cli(capsys, "--as", "rita", "order", "release", number,
                         "--accept-unverified", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["status"], shown["order_state"]) == ("succeeded", "done")

    code, out, err = cli(capsys, "--as", "tom", "order", "history", number, "--json")
    assert code == 0, err
    entries = json.loads(out)
    assert [(h["actor"], h["action"]) for h in entries] == [
        ("alice", "create"), ("alice", "submit"),
        ("alice", "deploy"), ("alice", "deployment"), ("system", "succeed"),
        ("tom", "pass"),
        ("auto_promote", "deploy"), ("auto_promote", "deployment"), ("system", "succeed"),
        ("tom", "pass"),
        ("auto_release", "auto_refused"),
        ("rita", "release"), ("rita", "deployment"), ("rita", "accept_unverified"),
        ("system", "succeed"),
    ]
    assert [(h["from"], h["to"]) for h in entries][-4:] == [
        ("staging:passed", "prod:deploying"), ("prod:deploying", "prod:deploying"),
        ("prod:deploying", "prod:deploying"), ("prod:deploying", "done")]
    assert entries[6]["reason"] == "after tom's pass"
    assert HOTFIX in entries[10]["reason"]
    assert entries[13]["reason"].startswith("released without verifying on staging: web: ")
    assert all(set(h) == {"at", "actor", "action", "from", "to", "reason"} for h in entries)
    times = [h["at"] for h in entries]
    assert times == sorted(times)
