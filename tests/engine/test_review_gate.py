"""The SQL review gate: risky statements stop a deploy before anything moves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from golive.cli.main import main

CONFIG = """\
hosts:
  - {name: h1, transport: local, root: "%(root)s/h1"}
databases:
  - {name: shop-test, url: "sqlite:///%(root)s/shop-test.db"}
projects:
  - name: shop
    members:
      - {user: dev, roles: [developer]}
      - {user: rel, roles: [releaser]}
    services:
      - name: api
        repo: "%(root)s/repos/api.git"
        stages:
          test: {mode: checkout, path: srv/api, hosts: [h1], database: shop-test}
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def order_with_risky_sql(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    from golive.testing.world import make_repo

    make_repo(tmp_path, "api", {"app.txt": "v1\n"}, branches={"feature/x": {"app.txt": "v2\n"}})
    config = tmp_path / "golive.yaml"
    config.write_text(CONFIG % {"root": tmp_path})
    assert run(capsys, "apply", "-f", str(config))[0] == 0
    sql = tmp_path / "api.sql"
    sql.write_text("CREATE TABLE t (a INT);\nINSERT INTO t VALUES (1);\nDELETE FROM t;\n")
    assert run(capsys, "--as", "dev", "order", "create", "-p", "shop", "-s", "api=feature/x",
               "--sql", f"api={sql}")[0] == 0
    assert run(capsys, "--as", "dev", "order", "submit", "1")[0] == 0
    return tmp_path


def test_a_refused_statement_stops_the_deploy_before_anything_moves(
    order_with_risky_sql: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "order", "plan", "1")
    assert "api:3 refuse (delete-without-where)" in out
    assert "api:2 warn (ddl-dml-mixed)" in out
    code, _, err = run(capsys, "--as", "dev", "order", "deploy", "1")
    assert code == 1
    assert "SQL api:3 is refused by the review rule delete-without-where" in err
    assert "golive order approve-sql 1" in err
    shown = json.loads(run(capsys, "order", "show", "1", "--json")[1])
    assert shown["state"] == "submitted"  # the order did not move
    assert json.loads(run(capsys, "sql", "list", "1", "--json")[1])[0]["executions"] == []
    assert not (order_with_risky_sql / "h1" / "srv").exists()

    code, _, err = run(capsys, "--as", "dev", "order", "approve-sql", "1")
    assert code == 1 and "needs the role releaser or owner" in err
    assert run(capsys, "--as", "rel", "order", "approve-sql", "1")[0] == 0
    code, _, err = run(capsys, "--as", "dev", "order", "deploy", "1")
    assert code == 0, err
    ledger = json.loads(run(capsys, "sql", "list", "1", "--json")[1])
    assert [r["executions"][0]["status"] for r in ledger] == ["success"] * 3


def test_an_approval_covers_only_the_statements_it_saw(
    order_with_risky_sql: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "--as", "rel", "order", "approve-sql", "1")[0] == 0
    more = order_with_risky_sql / "more.sql"
    more.write_text("CREATE TABLE t (a INT);\nINSERT INTO t VALUES (1);\nDELETE FROM t;\n"
                    "UPDATE t SET a = 2;\n")
    assert run(capsys, "--as", "dev", "order", "sql", "1", "-s", "api", "-f", str(more))[0] == 0
    code, _, err = run(capsys, "--as", "dev", "order", "deploy", "1")
    assert code == 1 and "SQL api:4 is refused by the review rule update-without-where" in err
