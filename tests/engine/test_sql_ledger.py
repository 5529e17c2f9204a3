"""The SQL ledger through real deployments: each statement runs once per database,
however often the order is redeployed, and a database shared by two stages does
not see a statement twice."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from golive.domain import plan as planning
from golive.services.deploy import build_plan
from golive.services.orders import ItemRequest, get_order
from golive.services.runtime import Runtime
from golive.store.models import (
    Deployment,
    DeploymentStep,
    LogLine,
    SqlExecution,
    SqlStatement,
    TargetDatabase,
)
from golive.testing.world import (
    act,
    apply_config,
    current_target,
    deploy,
    file_order,
    local_hosts,
    make_repo,
    rows,
)

SQL = """
CREATE TABLE coupons (code TEXT PRIMARY KEY, pct INTEGER NOT NULL);
INSERT INTO coupons (code, pct) VALUES ('WELCOME;10', 10);
-- not idempotent: a second run would show
UPDATE coupons SET pct = pct + 1 WHERE code = 'WELCOME;10';
"""


def pct(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT code, pct FROM coupons").fetchall()


def sql_messages(runtime: Runtime, deployment_id: int) -> list[str]:
    steps = rows(runtime, DeploymentStep, DeploymentStep.deployment_id == deployment_id,
                 DeploymentStep.name == "sql")
    return [s.message for s in steps]


def test_each_statement_runs_once_per_database(tmp_path: Path, sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    repo = make_repo(tmp_path, "orders", {"app/orders.py": "v = 1\n"},
                     branches={"feature/coupons": {"app/coupons.py": "c = 1\n"}})
    test_db, main_db = tmp_path / "db" / "test.db", tmp_path / "db" / "main.db"
    test_db.parent.mkdir()
    stage = {"mode": "artifact", "path": "srv/orders"}
    apply_config(runtime, tmp_path / "golive.yaml", {
        "hosts": local_hosts(tmp_path, ["t1", "s1", "p1"]),
        "databases": [{"name": "shop-test", "url": f"sqlite:///{test_db}"},
                      {"name": "shop-main", "url": f"sqlite:///{main_db}"}],
        "projects": [{
            "name": "shop", "stages": ["test", "staging", "prod"],
            "members": [{"user": "alice", "roles": ["developer"]},
                        {"user": "tom", "roles": ["tester"]},
                        {"user": "rita", "roles": ["releaser"]}],
            "services": [{"name": "orders", "repo": repo.url, "pack": ["app"], "stages": {
                "test": {**stage, "hosts": ["t1"], "database": "shop-test"},
                "staging": {**stage, "hosts": ["s1"], "database": "shop-main"},
                "prod": {**stage, "hosts": ["p1"], "database": "shop-main"},
            }}],
        }]})
    order_id = file_order(runtime, "alice", "shop",
                          [ItemRequest("orders", "feature/coupons", SQL)])
    statements = rows(runtime, SqlStatement)
    assert len(statements) == 3
    (test_ref,) = rows(runtime, TargetDatabase, TargetDatabase.name == "shop-test")
    (main_ref,) = rows(runtime, TargetDatabase, TargetDatabase.name == "shop-main")

    # the same order deployed three times on test: each statement ran exactly once
    deployments = [deploy(runtime, order_id, "alice", kind=k) for k in
                   ("iterative", "full", "full")]
    assert [ok for _, ok in deployments] == [True, True, True]
    assert current_target(tmp_path, "t1", "srv/orders") is not None
    on_test = rows(runtime, SqlExecution, SqlExecution.database_id == test_ref.id)
    assert sorted((e.statement_id, e.status, e.stage) for e in on_test) == [
        (s.id, "success", "test") for s in statements]
    assert all(e.order_id == order_id and e.executed_by == "alice" for e in on_test)
    assert [e.checksum for e in on_test] == [s.checksum for s in statements]
    assert pct(test_db) == [("WELCOME;10", 11)]
    assert [sql_messages(runtime, d) for d, _ in deployments] == [
        ["3 ran, 0 already ran"], ["0 ran, 3 already ran"], ["0 ran, 3 already ran"]]
    last_log = [line.text for line in rows(runtime, LogLine,
                                           LogLine.deployment_id == deployments[-1][0])]
    assert "3 statement(s) already ran on shop-test: skipped" in last_log
    assert not any(" ran on shop-test in " in text for text in last_log)

    # staging runs them on the shared database; prod, on the same database, runs none
    act(runtime, order_id, "pass", "tom")
    staging_id, ok = deploy(runtime, order_id, "rita")
    assert ok
    assert sql_messages(runtime, staging_id) == ["3 ran, 0 already ran"]
    act(runtime, order_id, "pass", "tom")
    with runtime.store.session() as session:
        plan = build_plan(runtime, session, get_order(session, order_id), "prod", "iterative")
    assert [(s.position, s.action) for s in plan.services[0].statements] == [
        (0, planning.SKIP), (1, planning.SKIP), (2, planning.SKIP)]
    prod_id, ok = deploy(runtime, order_id, "rita", action="release")
    assert ok, rows(runtime, Deployment, Deployment.id == prod_id)[0].error
    with runtime.store.session() as session:
        assert get_order(session, order_id).state == "done"
    assert sql_messages(runtime, prod_id) == ["0 ran, 3 already ran"]
    on_main = rows(runtime, SqlExecution, SqlExecution.database_id == main_ref.id)
    assert sorted((e.statement_id, e.status, e.stage) for e in on_main) == [
        (s.id, "success", "staging") for s in statements]
    assert rows(runtime, SqlExecution, SqlExecution.stage == "prod") == []
    assert pct(main_db) == [("WELCOME;10", 11)]
    assert current_target(tmp_path, "p1", "srv/orders") is not None
    assert len(rows(runtime, SqlExecution)) == 6
