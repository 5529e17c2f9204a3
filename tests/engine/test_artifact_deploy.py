"""Artifact mode end to end on local hosts: files, links, hook variables, ledgers,
keep_releases, artifact reuse across stages, the push after the last stage,
iterative versus full redeploys, and rollback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from golive.adapters.git import Mirror
from golive.domain.release import MARKER, releases_to_remove
from golive.services.orders import ItemRequest, get_order
from golive.services.runtime import Runtime
from golive.store.models import CommitLedger, Deployment, DeploymentStep, LogLine, Service
from golive.testing.world import (
    Repo,
    act,
    apply_config,
    commit,
    current_target,
    deploy,
    file_order,
    git,
    host_root,
    local_hosts,
    make_repo,
    release_ids,
    roll_back,
    rows,
)

BRANCH = "feature/x"
PATH = "srv/web"
BUILD = ("mkdir -p dist && cp -r src/. dist/ && printf '%s\\n' \"$GOLIVE_COMMIT\" > dist/COMMIT"
         " && echo noise > dist/build.log && mkdir -p dist/tests && echo t > dist/tests/unit.txt")
HOOK = ("env | grep '^GOLIVE_' | grep -v '^GOLIVE_HOME=' | sort > hook.env"
        " && readlink \"$GOLIVE_RELEASE_PATH/../../current\" > current-at-hook")
ROLLBACK_HOOK = ("printf '%s %s %s\\n' \"$GOLIVE_RELEASE\" \"$GOLIVE_PREVIOUS_RELEASE\""
                 " \"$(basename \"$PWD\")\" >> \"$HOME/rolled\"")
MEMBERS = [{"user": "alice", "roles": ["developer"]}, {"user": "tom", "roles": ["tester"]},
           {"user": "rita", "roles": ["releaser"]}]
WEB_FILES = {"src/index.html": "<h1>shop</h1>\n", "src/app.js": "main();\n",
             "config/app.ini": "[app]\n", "config/debug.log": "tracked but excluded\n",
             "README.md": "not packed\n"}


def web_repo(root: Path) -> Repo:
    return make_repo(root, "web", WEB_FILES,
                     branches={BRANCH: {"src/feature.html": "<p>new</p>\n"}})


def stage(hosts: list[str], **extra: Any) -> dict[str, Any]:
    return {"mode": "artifact", "path": PATH, "hosts": hosts, **extra}


def web_service(repo: Repo, stages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "web", "repo": repo.url, "main_branch": "main", "build": BUILD,
            "pack": ["dist", "config"], "exclude": ["*.log", "tests/"], "stages": stages,
            **extra}


def project(services: list[dict[str, Any]], stages: list[str]) -> dict[str, Any]:
    return {"name": "shop", "stages": stages, "members": MEMBERS, "services": services}


def hook_env(release: Path) -> dict[str, str]:
    lines = (release / "hook.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def state(runtime: Runtime, order_id: int) -> str:
    with runtime.store.session() as session:
        return get_order(session, order_id).state


def ledger_row(runtime: Runtime, order_id: int, service: str, stage_name: str) -> CommitLedger:
    (svc,) = rows(runtime, Service, Service.name == service)
    (row,) = rows(runtime, CommitLedger, CommitLedger.order_id == order_id,
                  CommitLedger.service_id == svc.id, CommitLedger.stage == stage_name)
    return row


def steps_of(runtime: Runtime, deployment_id: int) -> list[DeploymentStep]:
    return rows(runtime, DeploymentStep, DeploymentStep.deployment_id == deployment_id)


def log_of(runtime: Runtime, deployment_id: int) -> str:
    return "\n".join(line.text for line in rows(runtime, LogLine,
                                                LogLine.deployment_id == deployment_id))


def test_artifact_deploy_across_stages(tmp_path: Path, sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    web = web_repo(tmp_path)
    main_before = web.head("main")
    branch_head = web.head(BRANCH)
    stages = {"staging": stage(["s1", "s2"], batch=1, keep_releases=2),
              "prod": stage(["p1", "p2"], batch=1)}
    apply_config(runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["s1", "s2", "p1", "p2"]),
        "projects": [project([web_service(web, stages, shared=[".env"], post_deploy=[HOOK])],
                             ["staging", "prod"])]})
    for host in ("s1", "s2", "p1", "p2"):
        shared = host_root(tmp_path, host) / PATH / "shared"
        shared.mkdir(parents=True)
        (shared / ".env").write_text(f"HOST={host}\n")
    order_id = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])

    first_id, ok = deploy(runtime, order_id, "alice")
    assert ok, rows(runtime, Deployment)[-1].error
    assert state(runtime, order_id) == "staging:deployed"
    entry = ledger_row(runtime, order_id, "web", "staging")
    merge = entry.deployed_commit
    assert (entry.branch_commit, entry.main_commit, entry.deployment_id) == (
        branch_head, main_before, first_id)
    mirror = Mirror.at(runtime.settings.home / "repos", web.url).path
    parents = git(mirror, "rev-list", "--parents", "-n", "1", merge).split()[1:]
    assert parents == [main_before, branch_head]  # a --no-ff merge of the branch into main
    assert web.head("main") == main_before  # nothing is pushed before the last stage

    first_release = entry.release_id
    for host in ("s1", "s2"):
        base = host_root(tmp_path, host) / PATH
        assert current_target(tmp_path, host, PATH) == f"releases/{first_release}"
        release = base / "releases" / first_release
        assert (base / "current").resolve() == release.resolve()
        packed = sorted(p.relative_to(release).as_posix() for p in release.rglob("*")
                        if p.name not in ("hook.env", "current-at-hook"))
        assert packed == [".env", MARKER, "config", "config/app.ini", "dist", "dist/COMMIT",
                          "dist/app.js", "dist/feature.html", "dist/index.html"]
        assert (release / "dist" / "COMMIT").read_text() == f"{merge}\n"
        assert (release / "dist" / "feature.html").read_text() == "<p>new</p>\n"
        assert os.readlink(release / ".env") == "../../shared/.env"
        assert (base / "current" / ".env").read_text() == f"HOST={host}\n"
        assert (release / "current-at-hook").read_text().strip() == f"releases/{first_release}"
        assert hook_env(release) == {
            "GOLIVE_BRANCH": BRANCH, "GOLIVE_COMMIT": merge, "GOLIVE_DEPLOY_KIND": "iterative",
            "GOLIVE_HOST": host, "GOLIVE_ORDER_ID": str(order_id), "GOLIVE_PREVIOUS_RELEASE": "",
            "GOLIVE_PROJECT": "shop", "GOLIVE_RELEASE": first_release,
            "GOLIVE_RELEASE_PATH": str(release.resolve()), "GOLIVE_SERVICE": "web",
            "GOLIVE_STAGE": "staging"}
    switches = [s for s in steps_of(runtime, first_id) if s.name == "switch"]
    assert [s.status for s in switches] == ["done", "done"]
    assert switches[0].finished_at is not None and switches[1].started_at is not None
    assert switches[0].finished_at <= switches[1].started_at  # batch 1: one host at a time
    staging_marker = (host_root(tmp_path, "s1") / PATH / "current" / MARKER).read_text().split()

    # two full redeploys: keep_releases 2 leaves the two newest, current the newest
    second_id, ok = deploy(runtime, order_id, "alice", kind="full")
    assert ok
    second_release = ledger_row(runtime, order_id, "web", "staging").release_id
    release = host_root(tmp_path, "s2") / PATH / "releases" / second_release
    env = hook_env(release)
    assert (env["GOLIVE_PREVIOUS_RELEASE"], env["GOLIVE_DEPLOY_KIND"]) == (first_release, "full")
    third_id, ok = deploy(runtime, order_id, "alice", kind="full")
    assert ok
    third_release = ledger_row(runtime, order_id, "web", "staging").release_id
    assert len({first_release, second_release, third_release}) == 3
    for host in ("s1", "s2"):
        assert release_ids(tmp_path, host, PATH) == [second_release, third_release]
        assert current_target(tmp_path, host, PATH) == f"releases/{third_release}"
        assert not (host_root(tmp_path, host) / PATH / "releases" / first_release).exists()
    assert f"removed old releases: {first_release}" in log_of(runtime, third_id)

    # prod: the artifact staging built (same main and branch heads) ships as it is
    assert act(runtime, order_id, "pass", "tom") == "staging:passed"
    prod_id, ok = deploy(runtime, order_id, "rita", action="release")
    assert ok, rows(runtime, Deployment, Deployment.id == prod_id)[0].error
    assert state(runtime, order_id) == "done"
    (build_step,) = [s for s in steps_of(runtime, prod_id) if s.name == "build"]
    assert "reused" in build_step.message
    prod_entry = ledger_row(runtime, order_id, "web", "prod")
    assert prod_entry.deployed_commit == merge
    for host in ("p1", "p2"):
        marker = (host_root(tmp_path, host) / PATH / "current" / MARKER).read_text().split()
        assert marker == [prod_entry.release_id, merge, staging_marker[2]]
        assert (host_root(tmp_path, host) / PATH / "current" / "dist" / "COMMIT"
                ).read_text() == f"{merge}\n"
    # after the last stage the merge is on main, tagged golive/<order>
    assert web.head("main") == merge
    assert git(web.origin, "rev-parse", f"refs/tags/golive/{order_id}^{{commit}}") == merge
    assert web.parents(merge) == [main_before, branch_head]
    assert f"tagged golive/{order_id}" in log_of(runtime, prod_id)


def test_iterative_moves_only_changed_services_and_full_moves_all(
        tmp_path: Path, sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    web = web_repo(tmp_path)
    api = make_repo(tmp_path, "api", {"app/api.py": "v = 1\n"},
                    branches={"feature/api": {"app/api.py": "v = 2\n"}})
    apply_config(runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["t1"]),
        "projects": [project([
            web_service(web, {"test": stage(["t1"])}),
            {"name": "api", "repo": api.url, "pack": ["app"],
             "stages": {"test": {"mode": "artifact", "path": "srv/api", "hosts": ["t1"]}}},
        ], ["test", "prod"])]})
    order_id = file_order(runtime, "alice", "shop",
                          [ItemRequest("web", BRANCH), ItemRequest("api", "feature/api")])
    first_id, ok = deploy(runtime, order_id, "alice")
    assert ok
    web_first = ledger_row(runtime, order_id, "web", "test")
    api_first = ledger_row(runtime, order_id, "api", "test")
    (api_svc,) = rows(runtime, Service, Service.name == "api")
    (web_svc,) = rows(runtime, Service, Service.name == "web")

    new_head = commit(web, BRANCH, {"src/fix.html": "fixed\n"})
    second_id, ok = deploy(runtime, order_id, "alice")
    assert ok
    web_second = ledger_row(runtime, order_id, "web", "test")
    api_second = ledger_row(runtime, order_id, "api", "test")
    assert web_second.branch_commit == new_head != web_first.branch_commit
    assert web_second.deployed_commit != web_first.deployed_commit
    assert web_second.deployment_id == second_id
    assert (api_second.deployed_commit, api_second.release_id, api_second.deployment_id) == (
        api_first.deployed_commit, api_first.release_id, first_id)
    second_steps = steps_of(runtime, second_id)
    assert [s for s in second_steps if s.service_id == api_svc.id] == []
    assert {s.name for s in second_steps if s.service_id == web_svc.id} == {
        "build", "receive", "switch"}
    assert "unchanged since the last deploy on test: skipped" in log_of(runtime, second_id)
    assert current_target(tmp_path, "t1", "srv/api") == f"releases/{api_first.release_id}"
    assert release_ids(tmp_path, "t1", "srv/api") == [api_first.release_id]
    assert current_target(tmp_path, "t1", PATH) == f"releases/{web_second.release_id}"
    assert (host_root(tmp_path, "t1") / PATH / "current/dist/fix.html").read_text() == "fixed\n"

    third_id, ok = deploy(runtime, order_id, "alice", kind="full")
    assert ok
    for name in ("web", "api"):
        entry = ledger_row(runtime, order_id, name, "test")
        assert entry.deployment_id == third_id
        path = PATH if name == "web" else "srv/api"
        assert current_target(tmp_path, "t1", path) == f"releases/{entry.release_id}"
    assert {s.service_id for s in steps_of(runtime, third_id) if s.name == "switch"} == {
        web_svc.id, api_svc.id}
    assert "unchanged" not in log_of(runtime, third_id)


@pytest.fixture
def two_releases(tmp_path: Path, sqlite_runtime: Runtime) -> tuple[int, str, str]:
    """An order deployed twice on test (hosts h1, h2): (order id, older, newer release)."""
    runtime = sqlite_runtime
    web = web_repo(tmp_path)
    apply_config(runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["h1", "h2"]),
        "projects": [project([web_service(web, {"test": stage(["h1", "h2"], batch=1)},
                                          rollback_hooks=[ROLLBACK_HOOK])],
                             ["test", "prod"])]})
    order_id = file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    assert deploy(runtime, order_id, "alice")[1]
    older = ledger_row(runtime, order_id, "web", "test").release_id
    assert deploy(runtime, order_id, "alice", kind="full")[1]
    newer = ledger_row(runtime, order_id, "web", "test").release_id
    for host in ("h1", "h2"):
        assert current_target(tmp_path, host, PATH) == f"releases/{newer}"
    return order_id, older, newer


def test_rollback_switches_every_host_back(tmp_path: Path, sqlite_runtime: Runtime,
                                           two_releases: tuple[int, str, str]) -> None:
    runtime = sqlite_runtime
    order_id, older, newer = two_releases
    rollback_id, ok = roll_back(runtime, order_id, "rita")
    assert ok
    assert state(runtime, order_id) == "test:rolled_back"
    (deployment,) = rows(runtime, Deployment, Deployment.id == rollback_id)
    assert (deployment.kind, deployment.status, deployment.error) == ("rollback", "succeeded", "")
    for host in ("h1", "h2"):
        assert current_target(tmp_path, host, PATH) == f"releases/{older}"
        assert release_ids(tmp_path, host, PATH) == [older, newer]  # nothing rebuilt or removed
        assert (host_root(tmp_path, host) / "rolled").read_text() == f"{older} {newer} {older}\n"
    assert "SQL is not undone" in log_of(runtime, rollback_id)
    assert [s.status for s in steps_of(runtime, rollback_id) if s.name == "rollback"] == [
        "done", "done"]


def test_rollback_to_an_unknown_release_changes_nothing(
        tmp_path: Path, sqlite_runtime: Runtime, two_releases: tuple[int, str, str]) -> None:
    runtime = sqlite_runtime
    order_id, _older, newer = two_releases
    wanted = "20990101000000-d99"
    rollback_id, ok = roll_back(runtime, order_id, "rita", to_release=wanted)
    assert not ok
    (deployment,) = rows(runtime, Deployment, Deployment.id == rollback_id)
    assert deployment.status == "failed"
    assert deployment.error == f"service web: release {wanted} is not kept on host h1"
    assert state(runtime, order_id) == "test:deployed"
    for host in ("h1", "h2"):
        assert current_target(tmp_path, host, PATH) == f"releases/{newer}"
        assert not (host_root(tmp_path, host) / "rolled").exists()
    assert deployment.error in log_of(runtime, rollback_id)


def test_cleanup_never_removes_the_current_release() -> None:
    ids = [f"2026010100000{n}-d{n}" for n in range(1, 5)]
    listing = "\n".join([*ids, "not-a-release", ".incoming-x.tar.gz"])
    assert releases_to_remove(listing, ids[-1], 2) == ids[:2]
    assert releases_to_remove(listing, ids[0], 2) == ids[1:2]  # current is older, still kept
    assert releases_to_remove(listing, ids[0], 1) == ids[1:3]


def test_release_ids_order_by_time_then_deployment_number() -> None:
    same_second = ["20260101000000-d9", "20260101000000-d10", "20260101000000-d11"]
    listing = "\n".join(same_second)
    assert releases_to_remove(listing, None, 2) == ["20260101000000-d9"]
    assert releases_to_remove(listing, "20260101000000-d11", 1) == same_second[:2]
    assert releases_to_remove("20260101000001-d2\n" + listing, None, 1) == same_second


def test_a_changed_recipe_builds_again_on_the_same_commits(tmp_path: Path,
                                                          sqlite_runtime: Runtime) -> None:
    """The artifact is reused only for the same commits AND the same build/pack/exclude."""
    repo = web_repo(tmp_path)
    stages = {"staging": stage(["h1"]), "prod": stage(["h2"])}
    config = {"hosts": local_hosts(tmp_path, ["h1", "h2"]),
              "projects": [project([web_service(repo, stages)], ["staging", "prod"])]}
    apply_config(sqlite_runtime, tmp_path / "golive.yaml", config)
    order_id = file_order(sqlite_runtime, "alice", "shop", [ItemRequest("web", BRANCH)])
    _, ok = deploy(sqlite_runtime, order_id, "alice")
    assert ok
    # the build now also writes a file; the commits are the same
    changed = web_service(repo, stages, build=BUILD + " && echo extra > dist/extra.txt")
    config["projects"] = [project([changed], ["staging", "prod"])]
    apply_config(sqlite_runtime, tmp_path / "golive.yaml", config)
    act(sqlite_runtime, order_id, "pass", "tom")
    second_id, ok = deploy(sqlite_runtime, order_id, "rita", action="release")
    assert ok
    (step,) = rows(sqlite_runtime, DeploymentStep, DeploymentStep.deployment_id == second_id,
                   DeploymentStep.name == "build")
    assert step.message.startswith("built")
    release = host_root(tmp_path, "h2") / PATH / "current"
    assert (release / "dist" / "extra.txt").read_text() == "extra\n"
    assert not (host_root(tmp_path, "h1") / PATH / "current" / "dist" / "extra.txt").exists()
