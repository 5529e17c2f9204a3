"""An order's SQL is append-only once a statement ran (``sqlops.replace_sql`` and
``golive order sql N -s SERVICE -f FILE``).

Editing, removing or moving a statement that ran anywhere (``success`` or ``unknown``)
is refused, naming the statement and the database; a statement that only failed may be
fixed; new statements may be added at any time before the order is done.
"""

from __future__ import annotations

import pytest
from sql_world import SqlWorld, kill_session, query, sleep_sql

from golive.cli.main import main
from golive.errors import InputError, PermissionDenied
from golive.services import sqlops, users

SCRIPT = """\
CREATE TABLE notes (n INT);
INSERT INTO notes (n) VALUES (1);
INSRT INTO notes (n) VALUES (2);
"""
LINES = SCRIPT.splitlines()


def replace(world: SqlWorld, order_id: int, script: str, by: str = "alice") -> int:
    with world.runtime.store.session() as session:
        count = sqlops.replace_sql(session, order_id, "orders", script,
                                   users.acting_user(session, by))
        session.commit()
        return count


def texts(world: SqlWorld, order_id: int) -> list[str]:
    return [s.text for s in world.statements(order_id)]


def refused(world: SqlWorld, order_id: int, script: str) -> str:
    before = texts(world, order_id)
    with pytest.raises(InputError) as caught:
        replace(world, order_id, script)
    assert texts(world, order_id) == before, "a refused change must change nothing"
    return caught.value.message


def ran(number: int, status: str) -> str:
    return (f"statement orders:{number} has run on shop-test ({status}); it cannot be edited "
            "or removed: keep it and add a new statement after the others instead")


def notes(world: SqlWorld) -> list[tuple[int, ...]]:
    return query(world.url, "SELECT n FROM notes ORDER BY n")


def test_statements_that_ran_stay_and_new_ones_may_follow(
        world: SqlWorld, capsys: pytest.CaptureFixture[str]) -> None:
    order_id = world.order(SCRIPT, transactional=False)
    assert not world.deploy(order_id)[1]
    assert [(n, s) for n, s, _, _ in world.ledger(order_id)] == [
        (1, "success"), (2, "success"), (3, "failed")]

    edited = SCRIPT.replace("VALUES (1)", "VALUES (10)")
    assert refused(world, order_id, edited) == ran(2, "success")
    assert refused(world, order_id, "\n".join([LINES[1], LINES[0], LINES[2]])) == \
        ran(1, "success")  # moved is edited
    assert refused(world, order_id, LINES[0]) == ran(2, "success")  # removed
    assert refused(world, order_id, "") == ran(1, "success")
    with pytest.raises(PermissionDenied):  # a tester may not touch the SQL
        replace(world, order_id, SCRIPT + "INSERT INTO notes (n) VALUES (5);", by="tom")

    # through the CLI: the same refusal, exit 2, nothing changed
    path = world.root / "edited.sql"
    path.write_text(edited, encoding="utf-8")
    code = main(["--as", "alice", "order", "sql", str(order_id), "-s", "orders", "-f",
                 str(path)])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and ran(2, "success") in err, err
    assert texts(world, order_id)[1] == "INSERT INTO notes (n) VALUES (1)"

    # layout and comments are not part of a statement's identity: allowed
    relaid = ("-- the notes\nCREATE TABLE   notes (n INT);\n"
              "INSERT INTO notes (n)\n    VALUES (1);\n" + LINES[2])
    assert replace(world, order_id, relaid) == 3
    # a statement that only failed may be fixed; new ones may be added
    fixed = relaid.replace("INSRT", "INSERT") + "\nINSERT INTO notes (n) VALUES (3);"
    assert replace(world, order_id, fixed) == 4
    deployment = world.deploy_ok(order_id)
    assert world.sql_step(deployment.id).message == "2 ran, 2 already ran"
    assert notes(world) == [(1,), (2,), (3,)]

    # after a successful deploy, more may still be added (not yet done) ...
    assert world.state(order_id) == "test:deployed"
    assert replace(world, order_id, fixed + "\nINSERT INTO notes (n) VALUES (4);") == 5
    # ... but the statement that was fixed has run now: it is fixed for good
    assert refused(world, order_id, fixed.replace("VALUES (2)", "VALUES (20)")) == \
        ran(3, "success")
    deployment = world.deploy_ok(order_id)
    assert world.sql_step(deployment.id).message == "1 ran, 4 already ran"
    assert notes(world) == [(1,), (2,), (3,), (4,)]


def test_an_unknown_statement_cannot_be_edited(world: SqlWorld, backend: str) -> None:
    statement = sleep_sql(backend, 10)
    script = f"CREATE TABLE notes (n INT);\n{statement};\n"
    order_id = world.order(script, transactional=False)
    killer = kill_session(backend, world.url, statement)
    assert not world.deploy(order_id)[1]
    killer.join()
    assert [(n, s) for n, s, _, _ in world.ledger(order_id)] == [
        (1, "success"), (2, "unknown")]

    assert refused(world, order_id, script.replace("(10)", "(1)")) == ran(2, "unknown")
    assert refused(world, order_id, "CREATE TABLE notes (n INT);") == ran(2, "unknown")
    assert replace(world, order_id, script + "INSERT INTO notes (n) VALUES (1);") == 3


def test_the_sql_of_a_done_or_cancelled_order_cannot_change(world: SqlWorld) -> None:
    world.configure(stages=("test",))  # one stage: its success is done
    done = world.order("CREATE TABLE notes (n INT);")
    world.deploy_ok(done, "rita")  # the only stage is released by a releaser
    assert world.state(done) == "done"
    with pytest.raises(InputError) as caught:
        replace(world, done, "CREATE TABLE notes (n INT);\nINSERT INTO notes VALUES (1);")
    assert caught.value.message == f"order {done} is done: its SQL cannot change"

    cancelled = world.order("CREATE TABLE other (n INT);")
    world.act(cancelled, "cancel", "alice")
    with pytest.raises(InputError) as caught:
        replace(world, cancelled, "CREATE TABLE other (n BIGINT);")
    assert caught.value.message == f"order {cancelled} is cancelled: its SQL cannot change"
    assert texts(world, cancelled) == ["CREATE TABLE other (n INT)"]
