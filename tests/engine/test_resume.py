"""Resuming an interrupted deployment, step by step, on local hosts.

A real ``golive order deploy`` is SIGKILLed at a known point — while host h2's
post-deploy hook waits for a file, after h1 (batch 1) was switched — then the plan
explains the resume and ``golive order deploy`` finishes the same deployment: the
steps it finished are checked, not redone (h1's hook does not run twice), the
release id is the same on both hosts. ``--no-resume`` abandons it for a new one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from shlex import quote

import pytest

from golive.cli.main import main
from golive.services.orders import ItemRequest
from golive.services.runtime import Runtime
from golive.store.models import Deployment, DeploymentStep, OrderHistory
from golive.testing.world import (
    apply_config,
    current_target,
    file_order,
    local_hosts,
    make_repo,
    release_ids,
    rows,
)

GOLIVE = Path(sys.executable).parent / "golive"
BRANCH = "feature/x"
PATH = "srv/web"
MEMBERS = [{"user": "alice", "roles": ["developer"]}]


def hook(tmp_path: Path) -> str:
    """Each host appends its name to hooks.log; h2's hook then waits for the file GO."""
    log, go = quote(str(tmp_path / "hooks.log")), quote(str(tmp_path / "GO"))
    return (f'echo "$GOLIVE_HOST" >> {log}; [ "$GOLIVE_HOST" != h2 ] || '
            f"while [ ! -f {go} ]; do sleep 0.05; done")


def setup(tmp_path: Path, runtime: Runtime) -> int:
    repo = make_repo(tmp_path, "web", {"src/index.html": "v1\n"},
                     branches={BRANCH: {"src/index.html": "v2\n"}})
    apply_config(runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["h1", "h2"]),
        "projects": [{"name": "shop", "stages": ["test", "prod"], "members": MEMBERS,
                      "services": [{
                          "name": "web", "repo": repo.url, "build": "cp -r src dist",
                          "pack": ["dist"], "post_deploy": [hook(tmp_path)],
                          "stages": {s: {"mode": "artifact", "path": PATH, "batch": 1,
                                         "hosts": ["h1", "h2"]} for s in ("test", "prod")},
                      }]}],
    })
    return file_order(runtime, "alice", "shop", [ItemRequest("web", BRANCH)])


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def hooks_run(tmp_path: Path) -> list[str]:
    log = tmp_path / "hooks.log"
    return log.read_text().split() if log.exists() else []


def kill_while_h2_waits(tmp_path: Path, order_id: int) -> None:
    """Start `golive order deploy` in a process; SIGKILL it once h2's hook runs."""
    env = {**os.environ, "GOLIVE_USER": "alice"}  # GOLIVE_HOME: the test's home
    with open(tmp_path / "deploy.out", "wb") as out:
        process = subprocess.Popen([str(GOLIVE), "order", "deploy", str(order_id), "--json"],
                                   env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for("h2's post-deploy hook", lambda: "h2" in hooks_run(tmp_path))
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the hook's shell too
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, (tmp_path / "deploy.out").read_text()


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--as", "alice", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def steps(runtime: Runtime, deployment_id: int) -> list[tuple[str, str, str]]:
    names = {1: "h1", 2: "h2"}
    return [(s.name, names.get(s.host_id or 0, ""), s.status) for s in
            rows(runtime, DeploymentStep, DeploymentStep.deployment_id == deployment_id)]


def test_a_killed_deployment_resumes_where_it_stopped(
        tmp_path: Path, sqlite_runtime: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    order_id = setup(tmp_path, sqlite_runtime)
    kill_while_h2_waits(tmp_path, order_id)
    (killed,) = rows(sqlite_runtime, Deployment)
    rid = killed.release_id
    assert current_target(tmp_path, "h1", PATH) == f"releases/{rid}"

    # the next command finds it interrupted; the plan says what the resume keeps
    code, out, err = cli(capsys, "order", "plan", str(order_id), "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["resumes"] == killed.id
    assert plan["finished_steps"] == ["build web", "receive web@h1", "receive web@h2",
                                      "switch web@h1"]
    (interrupted,) = rows(sqlite_runtime, Deployment)
    assert interrupted.status == "interrupted"
    assert ("switch", "h2", "interrupted") in steps(sqlite_runtime, killed.id)
    code, out, _ = cli(capsys, "order", "plan", str(order_id))
    assert f"resumes interrupted deployment {killed.id}" in " ".join(out.split())

    (tmp_path / "GO").touch()
    code, out, err = cli(capsys, "order", "deploy", str(order_id), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["id"], result["status"], result["resumes"], result["order_state"]) == (
        killed.id, "succeeded", 1, "test:deployed")
    assert hooks_run(tmp_path) == ["h1", "h2", "h2"]  # h1 was switched: not again
    for host in ("h1", "h2"):
        assert current_target(tmp_path, host, PATH) == f"releases/{rid}"
        assert release_ids(tmp_path, host, PATH) == [rid]
    resumed = [s for s in rows(sqlite_runtime, DeploymentStep,
                               DeploymentStep.deployment_id == killed.id)
               if s.id > max(s.id for s in rows(sqlite_runtime, DeploymentStep,
                                                DeploymentStep.status == "interrupted"))]
    kept = {(s.name, s.message.split(":")[0]) for s in resumed if "kept" in s.message}
    assert kept == {("receive", f"release {rid} received before the interruption and still "
                                "complete"),
                    ("switch", f"current was switched to {rid} before the interruption")}
    assert [a for a in (h.action for h in rows(sqlite_runtime, OrderHistory))
            if a in ("deploy", "fail", "succeed", "deployment")] == [
        "deploy", "deployment", "fail", "deploy", "deployment", "succeed"]


def test_no_resume_abandons_the_interrupted_deployment(
        tmp_path: Path, sqlite_runtime: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    order_id = setup(tmp_path, sqlite_runtime)
    kill_while_h2_waits(tmp_path, order_id)
    (tmp_path / "GO").touch()
    code, out, err = cli(capsys, "order", "deploy", str(order_id), "--no-resume", "--json")
    assert code == 0, err
    first, second = rows(sqlite_runtime, Deployment)
    assert (first.status, second.status, json.loads(out)["id"]) == (
        "abandoned", "succeeded", second.id)
    assert first.release_id != second.release_id
    assert hooks_run(tmp_path) == ["h1", "h2", "h1", "h2"]  # everything again
    assert current_target(tmp_path, "h1", PATH) == f"releases/{second.release_id}"
    notes = [h.reason for h in rows(sqlite_runtime, OrderHistory) if h.action == "deployment"]
    assert f"deployment {first.id} abandoned for a new one (--no-resume)" in notes
