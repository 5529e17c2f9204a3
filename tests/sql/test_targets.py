"""Target databases on the real servers: what ``SqlTarget`` reports for each fault, and a
deployment whose database cannot be reached, logged into or found.

Every fault is one line that names the database (and, for a deployment, the statements
that did not run); a deployment that meets one fails and its order is ``test:failed``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from urllib.parse import quote_plus

import pytest
from sql_world import (
    SqlWorld,
    closed_port,
    db_user,
    end_sessions,
    kill_session,
    one_line,
    sessions_on,
    sleep_sql,
    syntax_message,
    table_exists,
    timeout_message,
    url_with,
    wait_for,
)

from golive.adapters.sqltarget import CONNECT_TIMEOUT, SqlTarget, SqlUncertain, open_target
from golive.errors import SqlFailed
from golive.store.models import TargetDatabase
from golive.testing.world import current_target, rows

FAULTS = ("unreachable", "bad credentials", "unknown database")
ONLY_POSTGRESQL = pytest.mark.parametrize("backend", ["postgresql"])


@pytest.fixture
def target(target_url: str) -> Iterator[SqlTarget]:
    opened = open_target("shop-test", target_url)
    yield opened
    opened.close()


def scalar(target: SqlTarget, sql: str) -> object:
    return target.connection.exec_driver_sql(sql).scalar()


@pytest.mark.parametrize("fault", FAULTS)
def test_a_database_that_cannot_be_used_fails_the_deployment(
        world: SqlWorld, backend: str, target_url: str, fault: str) -> None:
    """Bad credentials: on MariaDB a real user with a wrong password. PostgreSQL here
    trusts every connection from 127.0.0.1 (pg_hba ``trust``, see the next test), so no
    password can be wrong there: its refused credentials are a role that does not exist.
    """
    with ExitStack() as stack:
        if fault == "unreachable":
            port = int(stack.enter_context(closed_port()).getsockname()[1])
            url, said = url_with(target_url, port=port), "Connection refused"
        elif fault == "unknown database":
            url = url_with(target_url, database="golive_no_such_db")
            said = ("Unknown database 'golive_no_such_db'" if backend == "mariadb"
                    else 'database "golive_no_such_db" does not exist')
        elif backend == "mariadb":
            user, password = stack.enter_context(db_user(backend, target_url))
            url = url_with(target_url, username=user, password=password + "-wrong")
            said = f"Access denied for user '{user}'@'127.0.0.1' (using password: YES)"
        else:
            url = url_with(target_url, username="golive_no_such_role", password="wrong")
            said = 'role "golive_no_such_role" does not exist'
        world.configure(databases={"shop-test": url})
        order_id = world.order("CREATE TABLE t (n INT);\nINSERT INTO t VALUES (1);\n"
                               "INSERT INTO t VALUES (2);")
        started = time.monotonic()
        deployment, ok = world.deploy(order_id)
        took = time.monotonic() - started

    assert not ok and deployment.status == "failed"
    assert took < CONNECT_TIMEOUT, "a refused connection must not wait for the time limit"
    error = one_line(deployment.error)
    assert error.startswith("service orders: cannot connect to database shop-test: "), error
    assert said in error
    assert error.endswith("; SQL orders:1 to orders:3 not run"), error
    assert world.state(order_id) == "test:failed"
    assert world.sql_step(deployment.id).status == "failed"
    assert f"service orders: {world.sql_step(deployment.id).message}" == error
    assert world.log(deployment.id)[-1] == error
    assert world.executions(order_id) == []  # nothing was sent, nothing is recorded
    assert current_target(world.root, "orders-test", "srv/orders") is None
    assert not table_exists(target_url, "t")


@ONLY_POSTGRESQL
def test_postgresql_here_trusts_loopback_so_no_password_is_wrong(
        target_url: str, backend: str) -> None:
    """Why PostgreSQL's bad credentials above are a missing role (this server's setup)."""
    with db_user(backend, target_url) as (user, password):
        wrong = open_target("shop-test", url_with(target_url, username=user,
                                                  password=password + "-wrong"))
        try:
            assert scalar(wrong, "SELECT current_user") == user
        finally:
            wrong.close()


def test_statements_report_rows_and_the_database_refusal(target: SqlTarget,
                                                         backend: str) -> None:
    target.execute("CREATE TABLE t (id INT PRIMARY KEY, n INT)")
    assert target.execute("INSERT INTO t (id, n) VALUES (1, 1), (2, 2), (3, 3)") == 3
    assert target.execute("UPDATE t SET n = n + 1 WHERE id > 1") == 2
    assert target.execute("DELETE FROM t WHERE id = 42") == 0

    with pytest.raises(SqlFailed) as caught:
        target.execute("INSRT INTO t (id, n)\n  VALUES (4, 4)")
    assert not isinstance(caught.value, SqlUncertain)
    message = one_line(caught.value.message)
    assert message.startswith("statement `INSRT INTO t (id, n) VALUES (4, 4)` failed on "
                              "database shop-test: "), message
    assert syntax_message(backend) in message
    assert caught.value.database == "shop-test"

    with pytest.raises(SqlFailed) as caught:
        target.execute("INSERT INTO t (id, n) VALUES (1, 9)")
    assert not isinstance(caught.value, SqlUncertain)
    assert ("Duplicate entry '1'" if backend == "mariadb" else "duplicate key value") \
        in caught.value.message
    # the session is still good after a refusal, and nothing half-done stayed
    assert scalar(target, "SELECT SUM(n) FROM t") == 1 + 3 + 4


def test_a_long_statement_is_shown_on_one_shortened_line(target: SqlTarget) -> None:
    statement = "SELECT\n" + ",\n".join(f"  no_such_column_{i}" for i in range(40)) + \
        "\nFROM nowhere"
    with pytest.raises(SqlFailed) as caught:
        target.execute(statement)
    quoted = caught.value.message.split("`")[1]
    assert len(quoted) == 200 and quoted.endswith("…") and "\n" not in quoted
    assert quoted.startswith("SELECT no_such_column_0, no_such_column_1,")


def test_the_statement_time_limit_stops_a_statement(target_url: str, backend: str) -> None:
    target = open_target("shop-test", target_url, statement_timeout=1)
    try:
        started = time.monotonic()
        with pytest.raises(SqlFailed) as caught:
            target.execute(sleep_sql(backend, 5))
        took = time.monotonic() - started
        assert not isinstance(caught.value, SqlUncertain)
        assert 0.8 < took < 4, took
        message = one_line(caught.value.message)
        assert message.startswith(f"statement `{sleep_sql(backend, 5)}` failed on database "
                                  "shop-test: "), message
        assert timeout_message(backend) in message
        assert target.execute("SELECT 1") == 1  # the session lives on
    finally:
        target.close()


def test_a_lost_connection_is_uncertain(target: SqlTarget, backend: str,
                                        target_url: str) -> None:
    target.connect()
    statement = sleep_sql(backend, 10)
    killer = kill_session(backend, target_url, statement)
    started = time.monotonic()
    with pytest.raises(SqlUncertain) as caught:
        target.execute(statement)
    assert killer.join()
    assert time.monotonic() - started < 8
    message = one_line(caught.value.message)
    assert message.startswith(f"statement `{statement}` failed on database shop-test: the "
                              "connection was lost while it ran ("), message
    assert message.endswith("); it may or may not have taken effect"), message


def test_a_rollback_on_a_lost_connection_is_quiet(target: SqlTarget, backend: str,
                                                  target_url: str) -> None:
    target.connect()
    end_sessions(backend, wait_for("the target's session",
                                   lambda: sessions_on(backend, target_url)))
    with pytest.raises(SqlFailed):
        target.execute("SELECT 1")
    target.rollback()  # the server rolled back on its own: nothing to say


@ONLY_POSTGRESQL
def test_postgresql_groups_statements_in_a_transaction(target: SqlTarget) -> None:
    target.execute("CREATE TABLE t (n INT)")
    target.begin()
    target.execute("INSERT INTO t VALUES (1)")
    target.rollback()
    assert scalar(target, "SELECT COUNT(*) FROM t") == 0
    target.begin()
    target.execute("INSERT INTO t VALUES (2)")
    target.commit()
    assert scalar(target, "SELECT COUNT(*) FROM t") == 1


def test_an_unusable_url_is_one_clear_error() -> None:
    with pytest.raises(SqlFailed) as caught:
        open_target("shop-test", "mysql+nosuchdriver://root@127.0.0.1:3306/x")
    assert caught.value.message.startswith("database shop-test: the URL cannot be used: ")


def test_the_password_is_masked_in_every_message(target_url: str, backend: str,
                                                 world: SqlWorld) -> None:
    """A statement quoting the target's own password (rotating it, say) fails: the
    password shows in no message, neither in the statement's text nor in the
    database's answer (MariaDB quotes the text near a syntax error)."""
    with db_user(backend, target_url) as (user, password):
        world.configure(databases={"shop-test": url_with(target_url, username=user,
                                                          password=password)})
        order_id = world.order(f"SELECT 1 FROM WHERE '{password}'")
        deployment, ok = world.deploy(order_id)
    assert not ok
    assert "statement #1 `SELECT 1 FROM WHERE '***'` failed on database shop-test: " \
        in deployment.error
    execution = world.execution(order_id, 1)
    assert execution.status == "failed"
    if backend == "mariadb":  # the server quoted the password back; masked too
        assert "near 'WHERE '***'' at line 1" in execution.message, execution.message
    stored = rows(world.runtime, TargetDatabase)[0]
    assert stored.url_masked.startswith(f"mysql+pymysql://{user}:***@" if backend ==
                                        "mariadb" else f"postgresql+psycopg://{user}:***@")
    texts = [deployment.error, execution.message, stored.url_masked,
             *world.log(deployment.id), world.sql_step(deployment.id).message]
    assert all(password not in t and quote_plus(password) not in t for t in texts), texts
