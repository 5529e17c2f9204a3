"""`golive order plan|deploy|release|rollback|logs` on the demo world."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from golive.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def demo_world(capsys: pytest.CaptureFixture[str], golive_home: Path) -> Path:
    code, _, err = run(capsys, "demo", "--no-serve")
    assert code == 0, err
    code, out, err = run(capsys, "--as", "alice", "order", "create", "-p", "demo-shop",
                         "-s", "web=feature/coupons", "--json")
    assert code == 0, err
    assert json.loads(out)["id"] == 2
    assert run(capsys, "--as", "alice", "order", "submit", "2")[0] == 0
    return golive_home / "demo"


def test_plan_touches_nothing_and_deploy_follows_it(
    demo_world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "order", "plan", "2", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["stage"] == "test" and plan["kind"] == "iterative"
    (web,) = plan["services"]
    assert web["action"] == "deploy" and web["mode"] == "checkout"
    assert web["batches"] == [["demo-test-1"]]
    history = json.loads(run(capsys, "order", "show", "2", "--json")[1])["history"]
    assert [h["action"] for h in history] == ["create", "submit"]  # planning moved nothing

    code, out, err = run(capsys, "--as", "alice", "order", "deploy", "2", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "succeeded" and result["order_state"] == "test:deployed"

    code, out, _ = run(capsys, "order", "plan", "2", "--json")
    assert json.loads(out)["services"][0]["action"] == "unchanged"
    code, out, _ = run(capsys, "order", "plan", "2", "--full", "--json")
    assert json.loads(out)["services"][0]["action"] == "deploy"

    code, out, _ = run(capsys, "order", "logs", "2", "--json")
    logs = json.loads(out)
    assert logs["deployment"] == result["id"]
    assert any("succeeded" in line["text"] for line in logs["lines"])
    code, out, _ = run(capsys, "order", "logs", "2")
    assert "iterative deployment of order 2 on test started by alice" in out


def test_refusals_and_bad_input(demo_world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--as", "tom", "order", "deploy", "2")
    assert code == 1 and "needs the role developer or owner" in err
    code, _, err = run(capsys, "--as", "alice", "order", "release", "2")
    assert code == 1 and "release deploys on the last stage prod" in err
    code, _, err = run(capsys, "--as", "alice", "order", "deploy", "2", "--stage", "prod")
    assert code == 1 and "it can be deployed on test, not on prod" in err
    code, _, err = run(capsys, "order", "logs", "2")
    assert code == 2 and "deployment of order 2 does not exist" in err
    code, _, err = run(capsys, "order", "plan", "77")
    assert code == 2 and "order 77 does not exist" in err
    assert "Traceback" not in err


def test_a_failed_deploy_exits_1_and_keeps_the_previous_release(
    demo_world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # order 1 is done: prod-1 and prod-2 serve its release; break web's build on a new order
    work = demo_world / "work" / "web"
    os.system(f"cd {work} && git checkout -q -b broken main && "
              "git rm -q -r src && git commit -q -m 'drop src' && "
              f"git push -q {demo_world / 'repos' / 'web.git'} broken")
    test_copy = demo_world / "hosts" / "test-1" / "srv" / "web"
    before = subprocess.run(["git", "-C", str(test_copy), "rev-parse", "HEAD"],
                            capture_output=True, text=True).stdout
    assert run(capsys, "--as", "alice", "order", "create", "-p", "demo-shop",
               "-s", "web=broken")[0] == 0
    assert run(capsys, "--as", "alice", "order", "submit", "3")[0] == 0
    assert run(capsys, "--as", "alice", "order", "deploy", "3")[0] == 1  # build: no src/
    code, out, _ = run(capsys, "order", "show", "3", "--json")
    assert json.loads(out)["state"] == "test:failed"
    after = subprocess.run(["git", "-C", str(test_copy), "rev-parse", "HEAD"],
                           capture_output=True, text=True).stdout
    assert after == before  # the working copy was put back on the commit it had
    code, out, _ = run(capsys, "order", "logs", "3")
    assert "switched back to" in out


def test_rollback_on_prod(demo_world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prod = demo_world / "hosts" / "prod-1" / "srv" / "web"
    first = os.readlink(prod / "current")
    # take order 2 to prod, so prod has two releases of web
    assert run(capsys, "--as", "alice", "order", "deploy", "2")[0] == 0
    assert run(capsys, "--as", "tom", "order", "pass", "2")[0] == 0
    assert run(capsys, "--as", "rita", "order", "deploy", "2")[0] == 0
    assert run(capsys, "--as", "tom", "order", "pass", "2")[0] == 0
    assert run(capsys, "--as", "rita", "order", "release", "2")[0] == 0
    second = os.readlink(prod / "current")
    assert second != first
    code, _, err = run(capsys, "--as", "alice", "order", "rollback", "2")
    assert code == 1 and "needs the role releaser" in err
    code, out, err = run(capsys, "--as", "rita", "order", "rollback", "2", "--json")
    assert code == 0, err
    assert json.loads(out)["order_state"] == "prod:rolled_back"
    assert os.readlink(prod / "current") == first
    assert os.readlink(demo_world / "hosts" / "prod-2" / "srv" / "web" / "current") == first
    code, out, _ = run(capsys, "order", "logs", "2")
    assert "SQL is not undone" in out
