"""Checkout mode: the deploy path is a git working copy on the order's branch, built
on the host; the commit ledger records the commit the host reports."""

from __future__ import annotations

from pathlib import Path

from golive.services.orders import ItemRequest, get_order
from golive.services.runtime import Runtime
from golive.store.models import CommitLedger, Deployment, DeploymentStep, LogLine
from golive.testing.world import (
    Repo,
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
PATH = "srv/web"
HOSTS = ["h1", "h2"]
BUILD = ("[ ! -e break-build ] || { echo 'build refused' >&2; exit 5; };"
         " printf '%s\\n' \"$GOLIVE_COMMIT\" > built.txt && pwd -P > built-in.txt")
HOOK = "env | grep '^GOLIVE_' | grep -v '^GOLIVE_HOME=' | sort > hook.env"


def world(tmp_path: Path, runtime: Runtime) -> tuple[Repo, int]:
    repo = make_repo(tmp_path, "web", {"src/index.html": "v1\n", "old.txt": "old\n"},
                     branches={BRANCH: {"src/feature.html": "new\n"}})
    apply_config(runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, HOSTS),
        "projects": [{
            "name": "shop", "stages": ["test", "prod"],
            "members": [{"user": "alice", "roles": ["developer"]}],
            "services": [{
                "name": "web", "repo": repo.url, "build": BUILD, "post_deploy": [HOOK],
                "stages": {"test": {"mode": "checkout", "path": PATH, "hosts": HOSTS,
                                    "batch": 1}},
            }],
        }]})
    return repo, file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])


def copy(tmp_path: Path, host: str) -> Path:
    return host_root(tmp_path, host) / PATH


def ledger(runtime: Runtime) -> CommitLedger:
    (row,) = rows(runtime, CommitLedger)
    return row


def state(runtime: Runtime, order_id: int) -> str:
    with runtime.store.session() as session:
        return get_order(session, order_id).state


def test_checkout_deploys_and_redeploys_a_working_copy(tmp_path: Path,
                                                       sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    repo, order_id = world(tmp_path, runtime)
    first_head = repo.head(BRANCH)

    first_id, ok = deploy(runtime, order_id, "alice")
    assert ok, rows(runtime, Deployment)[-1].error
    assert state(runtime, order_id) == "test:deployed"
    for host in HOSTS:
        wc = copy(tmp_path, host)
        assert git(wc, "rev-parse", "--abbrev-ref", "HEAD") == BRANCH
        assert git(wc, "rev-parse", "HEAD") == first_head
        assert git(wc, "status", "--porcelain", "--untracked-files=no") == ""
        assert (wc / "src" / "feature.html").read_text() == "new\n"
        # the build ran on the host, in the working copy, with the branch head
        assert (wc / "built.txt").read_text() == f"{first_head}\n"
        assert (wc / "built-in.txt").read_text().strip() == str(wc.resolve())
        env = dict(line.split("=", 1) for line in (wc / "hook.env").read_text().splitlines())
        assert env == {
            "GOLIVE_BRANCH": BRANCH, "GOLIVE_COMMIT": first_head, "GOLIVE_DEPLOY_KIND": "iterative",
            "GOLIVE_HOST": host, "GOLIVE_ORDER_ID": str(order_id), "GOLIVE_PREVIOUS_RELEASE": "",
            "GOLIVE_PROJECT": "shop", "GOLIVE_RELEASE": "", "GOLIVE_RELEASE_PATH": "",
            "GOLIVE_SERVICE": "web", "GOLIVE_STAGE": "test"}
        assert not (wc / "current").exists() and not (wc / "releases").exists()
    steps = rows(runtime, DeploymentStep, DeploymentStep.deployment_id == first_id)
    assert [(s.name, s.status) for s in steps] == [("checkout", "done"), ("checkout", "done")]
    assert not (runtime.settings.home / "artifacts").exists()  # nothing built on the control side
    entry = ledger(runtime)
    assert (entry.branch_commit, entry.deployed_commit, entry.main_commit, entry.release_id) == (
        first_head, first_head, "", "")

    # a new commit on the branch: the next deploy moves HEAD, cleans, builds again
    (copy(tmp_path, "h1") / "junk.tmp").write_text("left by someone\n")
    second_head = commit(repo, BRANCH, {"src/feature.html": "newer\n", "old.txt": None})
    second_id, ok = deploy(runtime, order_id, "alice")
    assert ok
    for host in HOSTS:
        wc = copy(tmp_path, host)
        assert git(wc, "rev-parse", "HEAD") == second_head
        assert (wc / "src" / "feature.html").read_text() == "newer\n"
        assert not (wc / "old.txt").exists()
        assert not (wc / "junk.tmp").exists()
        assert (wc / "built.txt").read_text() == f"{second_head}\n"
    entry = ledger(runtime)
    assert (entry.branch_commit, entry.deployed_commit, entry.deployment_id) == (
        second_head, second_head, second_id)


def test_checkout_build_failure_puts_the_working_copies_back(tmp_path: Path,
                                                            sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    repo, order_id = world(tmp_path, runtime)
    first_head = repo.head(BRANCH)
    first_id, ok = deploy(runtime, order_id, "alice")
    assert ok

    commit(repo, BRANCH, {"break-build": "yes\n"})
    failed_id, ok = deploy(runtime, order_id, "alice")
    assert not ok
    assert state(runtime, order_id) == "test:failed"
    (deployment,) = rows(runtime, Deployment, Deployment.id == failed_id)
    assert deployment.status == "failed"
    assert "\n" not in deployment.error
    assert deployment.error.startswith("service web: host h1: `")
    assert deployment.error.endswith("exited with 5: build refused")
    for host in HOSTS:  # h1 checked out the new commit and was put back; h2 never moved
        wc = copy(tmp_path, host)
        assert git(wc, "rev-parse", "HEAD") == first_head
        assert not (wc / "break-build").exists()
        # put back with its build output, built again from the commit it is back on
        assert (wc / "built.txt").read_text() == f"{first_head}\n"
    entry = ledger(runtime)
    assert (entry.deployed_commit, entry.deployment_id) == (first_head, first_id)
    log = rows(runtime, LogLine, LogLine.deployment_id == failed_id)
    assert any(line.level == "warning" and line.host == "h1" and "switched back" in line.text
               for line in log)
    assert any(line.level == "error" and line.text == deployment.error for line in log)
