"""The SQL ledger through real deployments on MariaDB and PostgreSQL.

* statements fail one clear line naming the database and the statement; the first
  failure stops the run, earlier successes stay recorded, and after the fix a
  redeploy runs from the failed statement (checked on the data itself);
* a statement past its time limit fails with the database's message;
* a connection lost mid-statement leaves it ``unknown`` and blocks the next deploy
  until a person resolves it;
* the ledger is per database: staging and prod sharing one see each statement once,
  and each execution records status, duration, rows, who, when and the message;
* PostgreSQL runs an item in one transaction unless told not to; MariaDB cannot, and
  says so;
* no password shows in any error, log line or ledger message.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote_plus

import pytest
from sql_world import (
    BRANCH,
    SqlWorld,
    closed_port,
    db_user,
    kill_session,
    one_line,
    query,
    sleep_sql,
    syntax_message,
    table_exists,
    timeout_message,
    url_with,
)

from golive.cli.main import main
from golive.errors import RefusedError
from golive.services import sqlops, users
from golive.services.liveness import this_runner
from golive.services.notify import deliver_due
from golive.store.models import (
    Deployment,
    DeploymentStep,
    LogLine,
    OrderHistory,
    SqlExecution,
    utcnow,
)
from golive.testing.databases import scratch_database
from golive.testing.receivers import robot
from golive.testing.world import rows

ONLY_POSTGRESQL = pytest.mark.parametrize("backend", ["postgresql"])
ONLY_MARIADB = pytest.mark.parametrize("backend", ["mariadb"])

BROKEN = """\
CREATE TABLE hits (n INT);
INSERT INTO hits (n) VALUES (1);
INSRT INTO hits (n) VALUES (3);
INSERT INTO hits (n) VALUES (4);
UPDATE hits SET n = n * 10 WHERE n = 1;
"""
FIXED = BROKEN.replace("INSRT", "INSERT")
# a second run of statement 2 would add a row; of statement 1, fail; of statement 5, x100
FIXED_DATA = [(3,), (4,), (10,)]


def hits(world: SqlWorld) -> list[tuple[int, ...]]:
    return query(world.url, "SELECT n FROM hits ORDER BY n")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_order(world: SqlWorld, script: str, capsys: pytest.CaptureFixture[str],
              *options: str) -> int:
    """File and submit an order of ``orders`` with ``script`` through the CLI (as alice)."""
    path = world.root / "order.sql"
    path.write_text(script, encoding="utf-8")
    code, out, err = cli(capsys, "--as", "alice", "order", "create", "-p", "shop", "-s",
                         f"orders={BRANCH}", "--sql", f"orders={path}", *options, "--json")
    assert code == 0, err
    order_id = int(json.loads(out)["id"])
    code, _, err = cli(capsys, "--as", "alice", "order", "submit", str(order_id))
    assert code == 0, err
    return order_id


def fix_sql(world: SqlWorld, order_id: int, script: str, how: str,
            capsys: pytest.CaptureFixture[str]) -> None:
    """Replace the order's SQL for ``orders``: through the service or the CLI."""
    if how == "service":
        with world.runtime.store.session() as session:
            count = sqlops.replace_sql(session, order_id, "orders", script,
                                       users.acting_user(session, "alice"))
            session.commit()
        assert count == 5
        return
    path = world.root / "fixed.sql"
    path.write_text(script, encoding="utf-8")
    code, out, err = cli(capsys, "--as", "alice", "order", "sql", str(order_id),
                         "-s", "orders", "-f", str(path))
    assert code == 0, err
    assert out.strip() == f"order {order_id}: orders has 5 statement(s)"


@pytest.mark.parametrize("how", ["service", "cli"])
def test_a_syntax_error_in_statement_3_of_5_then_the_fix_runs_from_3(
        world: SqlWorld, backend: str, how: str, capsys: pytest.CaptureFixture[str]) -> None:
    # one by one: the default on MariaDB, asked for on PostgreSQL (--no-transaction)
    if how == "cli":
        order_id = cli_order(world, BROKEN, capsys, "--no-transaction", "orders")
    else:
        order_id = world.order(BROKEN,
                               transactional=False if backend == "postgresql" else None)
    deployment, ok = world.deploy(order_id)

    assert not ok and deployment.status == "failed"
    error = one_line(deployment.error)
    assert error.startswith("service orders: statement #3 `INSRT INTO hits (n) VALUES (3)` "
                            "failed on database shop-test: "), error
    assert syntax_message(backend) in error
    assert world.state(order_id) == "test:failed"
    assert world.ledger(order_id) == [(1, "success", "test", "shop-test"),
                                      (2, "success", "test", "shop-test"),
                                      (3, "failed", "test", "shop-test")]
    third = world.execution(order_id, 3)
    assert syntax_message(backend) in third.message
    assert third.message.startswith("statement #3 `INSRT INTO hits (n) VALUES (3)` failed on "
                                    "database shop-test: ")
    assert hits(world) == [(1,)]  # statements 4 and 5 never ran
    log = world.log(deployment.id)
    assert [line.split(" in ")[0] for line in log if line.startswith("SQL orders:")] == [
        "SQL orders:1 ran on shop-test", "SQL orders:2 ran on shop-test"]
    assert log[-1] == error

    fix_sql(world, order_id, FIXED, how, capsys)
    deployment = world.deploy_ok(order_id)
    assert world.state(order_id) == "test:deployed"
    assert world.sql_step(deployment.id).message == "3 ran, 2 already ran"
    assert "2 statement(s) already ran on shop-test: skipped" in world.log(deployment.id)
    assert [(n, status) for n, status, _, _ in world.ledger(order_id)] == [
        (1, "success"), (2, "success"), (3, "failed"), (3, "success"), (4, "success"),
        (5, "success")]
    assert hits(world) == FIXED_DATA


@ONLY_POSTGRESQL
def test_postgresql_runs_an_item_in_one_transaction(world: SqlWorld) -> None:
    order_id = world.order(BROKEN)
    deployment, ok = world.deploy(order_id)

    assert not ok
    assert one_line(deployment.error).startswith(
        "service orders: statement #3 `INSRT INTO hits (n) VALUES (3)` failed on database "
        "shop-test: syntax error at or near \"INSRT\"")
    assert world.ledger(order_id) == [(1, "failed", "test", "shop-test"),
                                      (2, "failed", "test", "shop-test"),
                                      (3, "failed", "test", "shop-test")]
    for number in (1, 2):
        assert world.execution(order_id, number).message == \
            "rolled back: SQL orders:3 failed in the same transaction"
    assert not table_exists(world.url, "hits")  # statement 1 was rolled back with the rest
    assert world.state(order_id) == "test:failed"

    with world.runtime.store.session() as session:  # statements 1-2 only failed: editable
        sqlops.replace_sql(session, order_id, "orders", FIXED,
                           users.acting_user(session, "alice"))
        session.commit()
    deployment = world.deploy_ok(order_id)
    assert "5 statement(s) ran on shop-test in one transaction" in world.log(deployment.id)
    assert world.sql_step(deployment.id).message == "5 ran, 0 already ran"
    assert [(n, s) for n, s, _, _ in world.ledger(order_id)][3:] == [
        (1, "success"), (2, "success"), (3, "success"), (4, "success"), (5, "success")]
    assert [world.executions(order_id)[i].rows_affected for i in (4, 5, 6, 7)] == [1, 1, 1, 1]
    assert hits(world) == FIXED_DATA


@ONLY_POSTGRESQL
def test_postgresql_one_by_one_when_the_item_says_so(world: SqlWorld) -> None:
    order_id = world.order(FIXED, transactional=False)
    deployment = world.deploy_ok(order_id)
    log = world.log(deployment.id)
    assert not any("one transaction" in line for line in log)
    assert sum(line.startswith("SQL orders:") for line in log) == 5


@ONLY_MARIADB
def test_mariadb_cannot_run_ddl_in_one_transaction_and_says_so(world: SqlWorld) -> None:
    order_id = world.order(BROKEN, transactional=True)
    deployment, ok = world.deploy(order_id)
    assert not ok
    assert ("MySQL-family databases commit DDL on their own: the statements run one by one"
            in world.log(deployment.id))
    assert [(n, s) for n, s, _, _ in world.ledger(order_id)] == [
        (1, "success"), (2, "success"), (3, "failed")]
    assert hits(world) == [(1,)]


def test_a_statement_past_its_time_limit_fails(world: SqlWorld, backend: str) -> None:
    world.configure(statement_timeout=1)
    statement = sleep_sql(backend, 5)
    order_id = world.order(statement)
    deployment, ok = world.deploy(order_id)

    assert not ok
    error = one_line(deployment.error)
    assert error.startswith(f"service orders: statement #1 `{statement}` failed on database "
                            "shop-test: "), error
    assert timeout_message(backend) in error
    execution = world.execution(order_id, 1)
    assert execution.status == "failed" and timeout_message(backend) in execution.message
    assert execution.duration_ms is not None and 900 <= execution.duration_ms < 4000
    assert world.state(order_id) == "test:failed"


def test_a_connection_lost_mid_statement_leaves_it_unknown(
        world: SqlWorld, backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    hook = ExitStack()
    receiver = hook.enter_context(robot("webhook"))
    world.configure(notify=[{"type": "webhook", "webhook": receiver.url,
                             "events": ["statement_unknown"]}])
    statement = sleep_sql(backend, 10)
    order_id = world.order(f"CREATE TABLE t (n INT);\n{statement};\nINSERT INTO t VALUES (1);",
                           transactional=False)
    killer = kill_session(backend, world.url, statement)
    deployment, ok = world.deploy(order_id)
    assert killer.join()

    assert not ok and deployment.status == "failed"
    error = one_line(deployment.error)
    assert error.startswith(f"service orders: statement #2 `{statement}` failed on database "
                            "shop-test: the connection was lost while it ran ("), error
    assert error.endswith("it may or may not have taken effect"), error
    assert world.ledger(order_id) == [(1, "success", "test", "shop-test"),
                                      (2, "unknown", "test", "shop-test")]
    assert "may or may not have taken effect" in world.execution(order_id, 2).message
    assert world.state(order_id) == "test:failed"
    # the people who settle it are told at once
    while deliver_due(world.runtime):
        pass
    hook.close()
    (told,) = receiver.messages
    assert (told["event"], told["order"]) == ("statement_unknown", order_id)
    assert "may or may not have taken effect" in told["text"]
    assert told["mentions"]["mobiles"] == [] and "rita" in told["text"]

    # the next deploy refuses to guess, naming the statement and how to settle it; nothing
    # starts (no deployment, the order stays where it is)
    with pytest.raises(RefusedError) as refused:
        world.deploy(order_id)
    assert world.state(order_id) == "test:failed"
    assert one_line(refused.value.message) == (
        f"SQL orders:2 is unknown on database shop-test: it may or may not have run; "
        f"resolve it with `golive sql resolve {order_id} orders:2 --as executed|retry` "
        "before deploying")
    assert len(world.executions(order_id)) == 2

    # only an owner or releaser settles it; only an unknown statement can be settled
    code, _, err = cli(capsys, "--as", "alice", "sql", "resolve", str(order_id), "orders:2",
                       "--as", "executed")
    assert code == 1 and "needs the role releaser or owner" in err
    code, _, err = cli(capsys, "--as", "rita", "sql", "resolve", str(order_id), "orders:1",
                       "--as", "executed")
    assert code == 2 and "is not unknown" in err
    code, out, err = cli(capsys, "--as", "rita", "sql", "resolve", str(order_id), "orders:2",
                         "--as", "executed")
    assert code == 0, err
    assert out.strip() == (f"order {order_id}: statement orders:2 on shop-test resolved as "
                           "executed")

    deployment = world.deploy_ok(order_id)
    assert world.sql_step(deployment.id).message == "1 ran, 2 already ran"
    assert world.ledger(order_id) == [(1, "success", "test", "shop-test"),
                                      (2, "success", "test", "shop-test"),
                                      (3, "success", "test", "shop-test")]
    assert world.execution(order_id, 2).message.startswith("resolved by rita as executed")
    assert query(world.url, "SELECT n FROM t") == [(1,)]


@ONLY_POSTGRESQL
def test_postgresql_a_connection_lost_inside_the_transaction(world: SqlWorld) -> None:
    """The statement that ran is ``unknown`` (golive never guesses, though PostgreSQL
    rolls an unfinished transaction back); those before it are recorded rolled back."""
    statement = sleep_sql("postgresql", 10)
    order_id = world.order(f"CREATE TABLE t (n INT);\n{statement};")
    killer = kill_session("postgresql", world.url, statement)
    deployment, ok = world.deploy(order_id)
    assert killer.join()

    assert not ok
    assert "it may or may not have taken effect" in one_line(deployment.error)
    assert world.ledger(order_id) == [(1, "failed", "test", "shop-test"),
                                      (2, "unknown", "test", "shop-test")]
    assert world.execution(order_id, 1).message == \
        "rolled back: SQL orders:2 failed in the same transaction"
    assert not table_exists(world.url, "t")
    assert world.state(order_id) == "test:failed"


def test_the_ledger_is_per_database_whichever_stage_ran_it(
        world: SqlWorld, backend: str, tmp_path: Path) -> None:
    sleep = sleep_sql(backend, 0.3)
    script = ("CREATE TABLE coupons (code VARCHAR(20) PRIMARY KEY, pct INT NOT NULL);\n"
              "INSERT INTO coupons (code, pct) VALUES ('WELCOME;10', 10), ('VIP', 20);\n"
              "UPDATE coupons SET pct = pct + 1 WHERE code = 'WELCOME;10';\n"
              f"{sleep};\n")
    coupons = "SELECT code, pct FROM coupons ORDER BY code"
    with scratch_database(backend, tmp_path) as main_url:
        world.configure(databases={"shop-test": world.url, "shop-main": main_url},
                        stage_databases={"test": "shop-test", "staging": "shop-main",
                                         "prod": "shop-main"})
        order_id = world.order(script)
        before = utcnow()
        first = world.deploy_ok(order_id)
        again = world.deploy_ok(order_id, kind="full")
        assert [world.sql_step(d.id).message for d in (first, again)] == [
            "4 ran, 0 already ran", "0 ran, 4 already ran"]
        world.act(order_id, "pass", "tom")
        staging = world.deploy_ok(order_id, "rita")
        world.act(order_id, "pass", "tom")
        prod = world.deploy_ok(order_id, "rita", action="release")
        after = utcnow()

        assert world.state(order_id) == "done"
        assert world.sql_step(staging.id).message == "4 ran, 0 already ran"
        assert world.sql_step(prod.id).message == "0 ran, 4 already ran"
        assert world.ledger(order_id) == \
            [(n, "success", "test", "shop-test") for n in (1, 2, 3, 4)] + \
            [(n, "success", "staging", "shop-main") for n in (1, 2, 3, 4)]
        for url in (world.url, main_url):
            assert query(url, coupons) == [("VIP", 20), ("WELCOME;10", 11)]

    executions = world.executions(order_id)
    assert [e.executed_by for e in executions] == ["alice"] * 4 + ["rita"] * 4
    assert [e.rows_affected for e in executions][1:3] == [2, 1]
    assert [e.rows_affected for e in executions][5:7] == [2, 1]
    for execution in executions:
        assert execution.status == "success" and execution.message == ""
        assert execution.runner == this_runner()
        assert execution.rows_affected is not None
        assert execution.duration_ms is not None and execution.duration_ms >= 0
        assert execution.finished_at is not None
        assert before <= execution.started_at <= execution.finished_at <= after
        assert execution.finished_at - execution.started_at >= \
            timedelta(milliseconds=execution.duration_ms)
    assert [(e.duration_ms or 0) >= 300 for e in executions] == [False, False, False, True] * 2


def test_no_password_shows_anywhere(world: SqlWorld, backend: str, target_url: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A user with a password meets every kind of fault; nothing golive wrote or prints
    holds the password (plain or URL-quoted)."""
    with db_user(backend, target_url) as (user, password), closed_port() as sock:
        good = url_with(target_url, username=user, password=password)
        order_id = world.order(BROKEN, transactional=False)
        urls = [url_with(good, port=int(sock.getsockname()[1])), good]
        if backend == "mariadb":  # PostgreSQL trusts loopback here: no wrong password
            urls.append(url_with(good, password=password + "x"))
        for url in urls:
            world.configure(databases={"shop-test": url})
            assert world.deploy(order_id)[1] is False
        world.configure(databases={"shop-test": good})
        statement = sleep_sql(backend, 10)
        lost = world.order(statement)
        killer = kill_session(backend, target_url, statement)
        assert world.deploy(lost)[1] is False
        killer.join()

    statuses = [(n, s) for n, s, _, _ in world.ledger(order_id)]
    assert statuses == [(1, "success"), (2, "success"), (3, "failed")]
    assert [s for _, s, _, _ in world.ledger(lost)] == ["unknown"]
    outputs = []
    for args in (["sql", "list", str(order_id), "--json"], ["sql", "list", str(lost)],
                 ["order", "logs", str(order_id)], ["order", "logs", str(lost)],
                 ["order", "show", str(order_id), "--json"]):
        code, out, err = cli(capsys, *args)
        assert code == 0, err
        outputs += [out, err]
    assert json.loads(outputs[0])[2]["executions"][0]["status"] == "failed"
    texts = [d.error for d in rows(world.runtime, Deployment)] + \
        [ln.text for ln in rows(world.runtime, LogLine)] + \
        [e.message for e in rows(world.runtime, SqlExecution)] + \
        [s.message for s in rows(world.runtime, DeploymentStep)] + \
        [h.reason for h in rows(world.runtime, OrderHistory)] + outputs
    assert sum("cannot connect to database shop-test" in t for t in texts) >= 2
    assert any("the connection was lost while it ran" in t for t in texts)
    leaked = [t for t in texts if password in t or quote_plus(password) in t]
    assert leaked == []
