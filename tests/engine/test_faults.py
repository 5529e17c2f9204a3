"""Every fault of issue 3 stops the deployment with one clear line, fails the order on
its stage, leaves every host on its previous complete release, keeps the log and
records in the ledgers exactly what ran."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from golive.domain.release import MARKER
from golive.services.orders import ItemRequest, get_order
from golive.services.runtime import Runtime
from golive.store.models import (
    CommitLedger,
    Deployment,
    DeploymentStep,
    LogLine,
    SqlExecution,
    SqlStatement,
)
from golive.testing.world import (
    Repo,
    apply_config,
    commit,
    current_target,
    deploy,
    file_order,
    host_root,
    local_hosts,
    make_repo,
    release_ids,
    roll_back,
    rows,
)

BRANCH = "feature/x"
PATH = "srv/web"
HOSTS = ["h1", "h2"]
GOOD_BUILD = "mkdir -p dist && cp -r src/. dist/\n"
HOOK = ("echo \"$GOLIVE_RELEASE\" >> \"$HOME/hook-runs\";"
        " [ ! -e \"$HOME/fail-hook\" ] || { echo \"$GOLIVE_HOST refuses\" >&2; exit 4; }")


@dataclass
class World:
    root: Path
    runtime: Runtime
    repo: Repo
    order_id: int
    db_path: Path

    def deploy(self, kind: str = "iterative") -> tuple[Deployment, bool]:
        deployment_id, ok = deploy(self.runtime, self.order_id, "alice", kind=kind)
        (row,) = rows(self.runtime, Deployment, Deployment.id == deployment_id)
        return row, ok

    def currents(self) -> list[str | None]:
        return [current_target(self.root, h, PATH) for h in HOSTS]

    def state(self) -> str:
        with self.runtime.store.session() as session:
            return get_order(session, self.order_id).state


def make_world(root: Path, runtime: Runtime, *, branch: str = BRANCH, sql: str = "",
               **service: Any) -> World:
    repo = make_repo(root, "web", {"src/index.html": "v1\n", "config/app.ini": "[app]\n",
                                   "ci/build.sh": GOOD_BUILD},
                     branches={BRANCH: {"src/index.html": "v2\n", "config/app.ini": "[x]\n"}})
    db_path = root / "db" / "test.db"
    db_path.parent.mkdir()
    apply_config(runtime, root / "golive.yaml", {
        "hosts": local_hosts(root, HOSTS),
        "databases": [{"name": "shop-test", "url": f"sqlite:///{db_path}"}],
        "projects": [{
            "name": "shop", "stages": ["test", "prod"],
            "members": [{"user": "alice", "roles": ["developer"]},
                        {"user": "rita", "roles": ["releaser"]}],
            "services": [{
                "name": "web", "repo": repo.url, "build": "sh ci/build.sh", "pack": ["dist"],
                "post_deploy": [HOOK],
                "stages": {"test": {"mode": "artifact", "path": PATH, "hosts": HOSTS,
                                    "batch": 1, "database": "shop-test"}},
                **service,
            }],
        }]})
    order_id = file_order(runtime, "alice", "shop", [ItemRequest("web", branch, sql)])
    return World(root, runtime, repo, order_id, db_path)


def good_first_deploy(world: World) -> tuple[Deployment, str]:
    """The order deployed once, fine; (that deployment, its release id)."""
    deployment, ok = world.deploy()
    assert ok, deployment.error
    (entry,) = rows(world.runtime, CommitLedger)
    assert world.currents() == [f"releases/{entry.release_id}"] * 2
    return deployment, entry.release_id


def assert_failed(world: World, deployment: Deployment, ok: bool, error: str,
                  previous: str | None) -> None:
    """The common shape of every fault: failed, one line, hosts untouched, log kept."""
    assert not ok
    assert deployment.status == "failed"
    assert deployment.finished_at is not None
    assert world.state() == "test:failed"
    assert deployment.error == error
    assert "\n" not in deployment.error
    expected = None if previous is None else f"releases/{previous}"
    assert world.currents() == [expected, expected]
    for host in HOSTS:
        base = host_root(world.root, host) / PATH
        assert not list(base.glob(".current-*"))
        if previous is not None:  # the previous release, complete, still behind current
            assert (base / "current" / MARKER).read_text().split()[0] == previous
            assert (base / "current" / "dist" / "index.html").read_text() == "v2\n"
    log = rows(world.runtime, LogLine, LogLine.deployment_id == deployment.id)
    assert log[0].text.startswith(f"{deployment.kind} deployment of order {world.order_id}")
    assert [(line.level, line.text) for line in log if line.level == "error"] == [
        ("error", error)]
    assert all("succeeded" not in line.text for line in log)


def ledger_unchanged(world: World, first: Deployment | None) -> None:
    entries = rows(world.runtime, CommitLedger)
    if first is None:
        assert entries == []
    else:
        assert [e.deployment_id for e in entries] == [first.id]


def failed_steps(world: World, deployment: Deployment) -> list[tuple[str, str]]:
    steps = rows(world.runtime, DeploymentStep, DeploymentStep.deployment_id == deployment.id)
    return [(s.name, s.message) for s in steps if s.status == "failed"]


def test_a_branch_that_does_not_exist(tmp_path: Path, sqlite_runtime: Runtime) -> None:
    world = make_world(tmp_path, sqlite_runtime, branch="feature/nope")
    deployment, ok = world.deploy()
    assert_failed(world, deployment, ok,
                  f"service web: branch feature/nope does not exist in {world.repo.url}", None)
    assert rows(world.runtime, DeploymentStep) == []
    ledger_unchanged(world, None)
    for host in HOSTS:
        assert not (host_root(tmp_path, host) / PATH).exists()


def test_a_merge_conflict_names_the_files(tmp_path: Path, sqlite_runtime: Runtime) -> None:
    world = make_world(tmp_path, sqlite_runtime)
    first, release = good_first_deploy(world)
    commit(world.repo, "main", {"src/index.html": "v3 on main\n", "config/app.ini": "[main]\n"})
    deployment, ok = world.deploy()
    assert_failed(world, deployment, ok, "service web: merging into main conflicts in: "
                  "config/app.ini, src/index.html", release)
    assert failed_steps(world, deployment) == [
        ("build", "merging into main conflicts in: config/app.ini, src/index.html")]
    ledger_unchanged(world, first)
    assert not list((tmp_path / "golive-home" / "work").rglob("index.html"))  # worktree gone


@pytest.mark.parametrize(("script", "error"), [
    ("echo compiling\necho 'syntax error in app.js' >&2\nexit 3\n",
     "service web: the build exited with 3: syntax error in app.js"),
    ("echo compiling\nsleep 30\n", "service web: the build ran past its limit of 1s"),
], ids=["fails", "times-out"])
def test_a_failing_build(tmp_path: Path, sqlite_runtime: Runtime, script: str,
                         error: str) -> None:
    world = make_world(tmp_path, sqlite_runtime, build_timeout=1)
    first, release = good_first_deploy(world)
    commit(world.repo, BRANCH, {"ci/build.sh": script})
    deployment, ok = world.deploy()
    assert_failed(world, deployment, ok, error, release)
    assert failed_steps(world, deployment) == [("build", error.removeprefix("service web: "))]
    ledger_unchanged(world, first)
    log = rows(world.runtime, LogLine, LogLine.deployment_id == deployment.id)
    assert any(line.text == "compiling" for line in log)  # the build's output is kept
    assert deployment.finished_at is not None and deployment.started_at is not None
    assert (deployment.finished_at - deployment.started_at).total_seconds() < 20
    for host in HOSTS:
        assert release_ids(tmp_path, host, PATH) == [release]  # no host received anything


def test_a_pack_folder_that_does_not_exist(tmp_path: Path, sqlite_runtime: Runtime) -> None:
    world = make_world(tmp_path, sqlite_runtime, pack=["dist", "assets"])
    with_assets = GOOD_BUILD + "mkdir -p assets && echo a > assets/a\n"
    commit(world.repo, BRANCH, {"ci/build.sh": with_assets})
    first, release = good_first_deploy(world)
    commit(world.repo, BRANCH, {"ci/build.sh": GOOD_BUILD})
    deployment, ok = world.deploy()
    assert_failed(world, deployment, ok,
                  "service web: pack folder assets does not exist after the build", release)
    ledger_unchanged(world, first)
    for host in HOSTS:
        assert release_ids(tmp_path, host, PATH) == [release]


@pytest.mark.parametrize("target", ["../../etc", "/etc"])
def test_an_archive_entry_escaping_the_release(tmp_path: Path, sqlite_runtime: Runtime,
                                               target: str) -> None:
    world = make_world(tmp_path, sqlite_runtime)
    first, release = good_first_deploy(world)
    commit(world.repo, BRANCH, {"ci/build.sh": GOOD_BUILD + f"ln -s {target} dist/evil\n"})
    deployment, ok = world.deploy()
    assert_failed(world, deployment, ok,
                  f"service web: dist/evil links to {target}, outside the release", release)
    ledger_unchanged(world, first)
    for host in HOSTS:
        assert release_ids(tmp_path, host, PATH) == [release]
        assert not (host_root(tmp_path, host) / PATH / "current" / "dist" / "evil").exists()


def test_a_failing_post_deploy_on_the_second_host(tmp_path: Path,
                                                  sqlite_runtime: Runtime) -> None:
    world = make_world(tmp_path, sqlite_runtime)
    first, release = good_first_deploy(world)
    (host_root(tmp_path, "h2") / "fail-hook").write_text("")
    deployment, ok = world.deploy(kind="full")
    assert_failed(world, deployment, ok,
                  f"service web: host h2: `{HOOK}` exited with 4: h2 refuses", release)
    # h1 was switched and ran its hook; h2 was switched, its hook failed; both went back
    runs = [(host_root(tmp_path, h) / "hook-runs").read_text().split() for h in HOSTS]
    new_release = runs[0][-1]
    assert new_release.endswith(f"-d{deployment.id}")
    assert runs == [[release, new_release], [release, new_release]]
    steps = rows(world.runtime, DeploymentStep, DeploymentStep.deployment_id == deployment.id)
    assert [(s.name, s.status) for s in steps if s.name == "switch"] == [
        ("switch", "done"), ("switch", "failed")]
    log = rows(world.runtime, LogLine, LogLine.deployment_id == deployment.id)
    assert {(line.host, line.text) for line in log if line.level == "warning"} == {
        ("h1", f"switched back to {release}"), ("h2", f"switched back to {release}")}
    assert {(line.host, line.text) for line in log if "removed" in line.text} == {
        (h, f"release {new_release} removed: the deployment failed") for h in HOSTS}
    ledger_unchanged(world, first)
    # the release that failed is not left behind on any host
    assert [release_ids(tmp_path, h, PATH) for h in HOSTS] == [[release], [release]]


def test_a_rollback_never_picks_a_release_that_failed(tmp_path: Path,
                                                      sqlite_runtime: Runtime) -> None:
    world = make_world(tmp_path, sqlite_runtime)
    _, first_release = good_first_deploy(world)
    (host_root(tmp_path, "h2") / "fail-hook").write_text("")
    failed, ok = world.deploy(kind="full")
    assert not ok
    (host_root(tmp_path, "h2") / "fail-hook").unlink()
    third, ok = world.deploy(kind="full")
    assert ok, third.error
    (entry,) = rows(world.runtime, CommitLedger)
    assert world.currents() == [f"releases/{entry.release_id}"] * 2
    assert release_ids(tmp_path, "h1", PATH) == [first_release, entry.release_id]
    _, ok = roll_back(world.runtime, world.order_id, "rita")
    assert ok
    assert world.currents() == [f"releases/{first_release}"] * 2


SQL = ("CREATE TABLE coupons (code TEXT PRIMARY KEY);\n"
       "INSERT INTO vouchers (code) VALUES ('WELCOME');\n"
       "INSERT INTO coupons (code) VALUES ('WELCOME');\n")


def test_a_failing_sql_statement(tmp_path: Path, sqlite_runtime: Runtime) -> None:
    world = make_world(tmp_path, sqlite_runtime, sql=SQL)
    deployment, ok = world.deploy()
    bad = "INSERT INTO vouchers (code) VALUES ('WELCOME')"
    error = (f"service web: statement #2 `{bad}` failed on database shop-test: "
             "no such table: vouchers")
    assert_failed(world, deployment, ok, error, None)
    statements = rows(world.runtime, SqlStatement)
    executions = rows(world.runtime, SqlExecution)
    assert [(e.statement_id, e.status, e.stage) for e in executions] == [
        (statements[0].id, "success", "test"), (statements[1].id, "failed", "test")]
    assert executions[1].message.endswith("no such table: vouchers")
    assert executions[0].finished_at is not None and executions[0].duration_ms is not None
    assert failed_steps(world, deployment) == [("sql", error.removeprefix("service web: "))]
    with sqlite3.connect(world.db_path) as db:  # what ran is what the ledger says ran
        assert db.execute("SELECT count(*) FROM coupons").fetchone() == (0,)
    ledger_unchanged(world, None)
    for host in HOSTS:  # no host was switched to the release, and it was not left behind
        assert release_ids(tmp_path, host, PATH) == []
        assert not (host_root(tmp_path, host) / "hook-runs").exists()
