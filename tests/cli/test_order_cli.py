"""`golive order|user|member ...` end to end on the default SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from golive.cli.main import main

CONFIG = """\
hosts:
  - {name: box-1, transport: local, root: "%(root)s/box-1"}
projects:
  - name: shop
    members:
      - {user: dev, roles: [developer]}
      - {user: qa, roles: [tester]}
      - {user: rel, roles: [releaser]}
    services:
      - name: api
        repo: /nowhere/api.git
        stages:
          test: {path: srv/api, hosts: [box-1]}
      - name: web
        repo: /nowhere/web.git
        stages:
          test: {path: srv/web, hosts: [box-1]}
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def shop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    config = tmp_path / "golive.yaml"
    config.write_text(CONFIG % {"root": tmp_path})
    code, _, err = run(capsys, "apply", "-f", str(config))
    assert code == 0, err
    return tmp_path


def test_order_walk_with_json_and_history(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = shop / "api.sql"
    sql.write_text("CREATE TABLE a (x INT);\nINSERT INTO a VALUES (1);\n")
    code, out, err = run(capsys, "--as", "dev", "order", "create", "-p", "shop",
                         "-s", "api=feature/x", "-s", "web=feature/x",
                         "--sql", f"api={sql}", "-t", "优惠券", "--json")
    assert code == 0, err
    created = json.loads(out)
    assert created["id"] == 1 and created["state"] == "draft" and created["title"] == "优惠券"
    assert [len(i["statements"]) for i in created["items"]] == [2, 0]

    assert run(capsys, "--as", "dev", "order", "submit", "1")[0] == 0
    code, out, err = run(capsys, "--as", "qa", "order", "pass", "1")
    assert code == 1
    assert "only a deployed stage can be passed" in err and "Traceback" not in err
    assert run(capsys, "--as", "dev", "order", "cancel", "1", "--reason", "not needed")[0] == 0

    code, out, _ = run(capsys, "order", "show", "1", "--json")
    shown = json.loads(out)
    assert shown["state"] == "cancelled"
    assert [(h["actor"], h["action"], h["from"], h["to"]) for h in shown["history"]] == [
        ("dev", "create", "", "draft"),
        ("dev", "submit", "draft", "submitted"),
        ("dev", "cancel", "submitted", "cancelled"),
    ]
    assert shown["history"][-1]["reason"] == "not needed"
    assert set(shown) >= {"id", "project", "title", "state", "created_by", "items", "history"}

    code, out, _ = run(capsys, "order", "list", "--json", "--state", "cancelled")
    assert [o["id"] for o in json.loads(out)] == [1]


def test_permission_refusal_names_the_role(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--as", "qa", "order", "create", "-p", "shop", "-s", "api=x")
    assert code == 1
    assert "needs the role developer or owner" in err and "qa has tester" in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["order", "show", "99"], "order 99 does not exist"),
        (["order", "submit", "99"], "order 99 does not exist"),
        (["order", "create", "-p", "nope", "-s", "api=x"], "project nope does not exist"),
        (["order", "create", "-p", "shop", "-s", "ghost=x"], "service ghost does not exist"),
        (["order", "create", "-p", "shop", "-s", "api=-rf"], "starts with '-'"),
        (["order", "create", "-p", "shop", "-s", "api"], "expects SERVICE=VALUE"),
        (["order", "create", "-p", "shop", "-s", "api=x", "--sql", "web=api.sql"],
         "not in the order"),
        (["order", "create", "-p", "shop", "-s", "api=x", "--sql", "api=/no/such.sql"],
         "cannot read the file"),
        (["--as", "ghost", "order", "list"], "user ghost does not exist"),
        (["member", "add", "dev", "-p", "shop", "--role", "boss"], "unknown role 'boss'"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    shop: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2, err
    assert needle in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_profile_holds_the_ids_mentions_use(shop: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "user", "add", "zoe")[0] == 0
    assert run(capsys, "user", "add", "eve")[0] == 0
    code, out, err = run(capsys, "--as", "zoe", "user", "set", "zoe", "--mobile",
                         "13800000009", "--dingtalk-id", "dt-zoe", "--feishu-id", "ou_zoe",
                         "--wecom-id", "zoe.w", "--language", "zh_CN")
    assert code == 0, err
    assert out.strip() == "user zoe: dingtalk_id, feishu_id, language, mobile, wecom_id changed"
    users = {u["name"]: u for u in json.loads(run(capsys, "user", "list", "--json")[1])}
    assert (users["zoe"]["mobile"], users["zoe"]["dingtalk_id"], users["zoe"]["feishu_id"],
            users["zoe"]["wecom_id"], users["zoe"]["language"]) == (
        "13800000009", "dt-zoe", "ou_zoe", "zoe.w", "zh_CN")
    code, _, err = run(capsys, "--as", "eve", "user", "set", "zoe", "--mobile", "1")
    assert code == 1 and "changing zoe's profile needs a site admin" in err
    assert run(capsys, "user", "set", "zoe", "--email", "z@x.test")[0] == 0  # the admin may
    code, _, err = run(capsys, "user", "set", "zoe", "--language", "fr")
    assert code == 2 and "language 'fr' is not one of: en, zh_CN" in err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "order", "reject", "1")
    assert code == 2
    assert "--reason" in err


def test_users_and_members(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "user", "add", "zoe", "--email", "zoe@example.com",
               "--language", "zh_CN")[0] == 0
    code, out, _ = run(capsys, "user", "list", "--json")
    users = {u["name"]: u for u in json.loads(out)}
    assert users["admin"]["is_admin"] is True
    assert users["zoe"]["language"] == "zh_CN" and users["zoe"]["is_admin"] is False
    assert run(capsys, "--as", "zoe", "user", "add", "eve")[0] == 1
    assert run(capsys, "member", "add", "zoe", "-p", "shop", "--role", "developer")[0] == 0
    code, _, err = run(capsys, "--as", "zoe", "order", "create", "-p", "shop", "-s", "api=x")
    assert code == 0, err
    code, _, err = run(capsys, "--as", "zoe", "member", "add", "qa", "-p", "shop",
                       "--role", "owner")
    assert code == 1 and "needs the role owner" in err


def test_the_console_script_exits_with_the_contract_codes(
    shop: Path, golive_home: Path
) -> None:
    script = Path(sys.executable).parent / "golive"
    env = {**os.environ, "GOLIVE_HOME": str(golive_home)}
    done = subprocess.run([str(script), "order", "show", "42"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "order 42 does not exist" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([str(script), "order", "list", "--json"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and json.loads(done.stdout) == []


def test_demo_takes_an_order_to_done(capsys: pytest.CaptureFixture[str],
                                     golive_home: Path) -> None:
    code, demo_out, err = run(capsys, "demo", "--no-serve")
    assert code == 0, err
    assert "order 1 is now done" in demo_out
    code, out, _ = run(capsys, "order", "show", "1", "--json")
    order = json.loads(out)
    assert order["state"] == "done" and order["project"] == "demo-shop"
    assert [i["service"] for i in order["items"]] == ["web", "orders"]
    actions = [(h["actor"], h["action"]) for h in order["history"]]
    assert actions[:3] == [("alice", "create"), ("alice", "submit"), ("alice", "deploy")]
    assert ("rita", "release") in actions and actions[-1] == ("system", "succeed")
    current = golive_home / "demo" / "hosts" / "prod-2" / "srv" / "web" / "current"
    assert current.is_symlink() and (current / "dist" / "coupon.html").exists()
    # the iterative redeploy on test moved web only and ran no statement twice
    assert "unchanged since the last deploy on test: skipped" in demo_out
    assert demo_out.count("SQL orders:1 ran on demo-shop-main") == 1
    assert "2 statement(s) already ran on demo-shop-main: skipped" in demo_out
    # a second run starts the world from scratch and still works
    code, out, err = run(capsys, "demo", "--no-serve")
    assert code == 0, err
    assert "order 2 is now done" in out
