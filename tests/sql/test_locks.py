"""One runner per database: two deployments sharing a database never run statements on
it at the same time.

* the database-side lock (``GET_LOCK`` on MariaDB, ``pg_advisory_lock`` on PostgreSQL)
  excludes a second connection until released or the connection closes;
* a second deployment on the same database says "waiting for order N" and runs when
  the first is done; with a short time limit it gives up, naming the order;
* a runner of another store (another control machine) running SQL on the database
  keeps golive out too, whatever it calls the database; a lock on another database
  of the same golive name does not.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sql_world import SqlWorld, sessions_running, sleep_sql, wait_for

from golive.adapters.sqltarget import SqlTarget, open_target
from golive.errors import DeployError
from golive.services.orders import get_order
from golive.services.runtime import open_runtime
from golive.services.sqlrun import SqlJob, run_statements
from golive.services.work import load_items
from golive.settings import get_settings
from golive.store.models import Deployment, SqlLock
from golive.testing.databases import scratch_database
from golive.testing.world import rows


@pytest.fixture
def two_targets(target_url: str) -> Iterator[tuple[SqlTarget, SqlTarget]]:
    first, second = open_target("shop-test", target_url), open_target("shop-test", target_url)
    yield first, second
    first.close()
    second.close()


def test_the_database_lock_excludes_a_second_connection(
        two_targets: tuple[SqlTarget, SqlTarget]) -> None:
    first, second = two_targets
    key = f"sql:locktest-{uuid.uuid4().hex[:8]}"  # GET_LOCK names are server-wide
    assert first.lock(key, 1)
    started = time.monotonic()
    assert not second.lock(key, 1)
    assert 0.9 <= time.monotonic() - started < 5
    assert second.lock(key + "-other", 0)  # another key is another lock

    # a waiting runner gets the lock as soon as it is released
    got: list[tuple[bool, float]] = []

    def wait() -> None:
        began = time.monotonic()
        got.append((second.lock(key, 10), time.monotonic() - began))

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.6)
    assert got == []
    first.unlock(key)
    waiter.join(15)
    (ok, waited) = got[0]
    assert ok and 0.5 <= waited < 5, got

    # a closed connection releases the lock it held
    assert not first.lock(key, 0)
    second.close()
    assert first.lock(key, 1)


@dataclass
class Background:
    """A deployment run in a thread."""

    world: SqlWorld
    order_id: int
    ok: list[bool] = field(default_factory=list)
    problem: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.ok.append(self.world.deploy(self.order_id)[1])
        except BaseException as exc:  # handed to the test by join()
            self.problem.append(exc)

    def join(self) -> bool:
        self.thread.join(60)
        if self.problem:
            raise self.problem[0]
        return self.ok[0]


def start_slow_order(world: SqlWorld, seconds: float = 3) -> tuple[Background, int]:
    """Order A of service api sleeping ``seconds`` on shop-test, deploying in a thread;
    returns once its statement runs on the server (holding both locks)."""
    world.configure(services=("api", "web"))
    statement = sleep_sql(world.backend, seconds)
    first = world.order(statement, service="api")
    running = Background(world, first)
    wait_for("order A's statement running", lambda: sessions_running(
        world.backend, world.url, statement))
    assert [lock.order_id for lock in rows(world.runtime, SqlLock)] == [first]
    return running, first


def job_for(world: SqlWorld, order_id: int, lines: list[str], lock_timeout: float,
            database: str = "shop-test") -> SqlJob:
    """A SqlJob of order ``order_id`` on test, as a deployment would make it."""
    with world.runtime.store.session() as session:
        (item,) = load_items(get_order(session, order_id), "test", world.runtime.box)
    assert item.database is not None and item.database.name == database
    return SqlJob(world.runtime.store.sessions, open_target(database, item.database.url),
                  item.database.id, order_id, 0, "test", item.service, "alice",
                  item.statements, item.transactional, lines.append, lock_timeout)


def test_a_second_deployment_waits_for_the_first(world: SqlWorld) -> None:
    running, first = start_slow_order(world)
    second = world.order("CREATE TABLE b (n INT);\nINSERT INTO b VALUES (1);", service="web")
    deployment = world.deploy_ok(second)
    assert running.join()

    log = world.log(deployment.id)
    assert f"waiting for order {first} to finish its SQL on shop-test" in log
    (slow,) = world.executions(first)
    assert slow.finished_at is not None
    later = world.executions(second)
    assert [e.status for e in later] == ["success", "success"]
    assert all(e.started_at >= slow.finished_at for e in later), (slow, later)
    assert rows(world.runtime, SqlLock) == []


def test_a_busy_database_gives_up_after_the_time_limit(world: SqlWorld) -> None:
    running, first = start_slow_order(world)
    second = world.order("CREATE TABLE b (n INT);", service="web")
    lines: list[str] = []
    job = job_for(world, second, lines, lock_timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(DeployError) as caught:
            run_statements(job)
    finally:
        job.target.close()
    assert time.monotonic() - started < 4
    assert caught.value.message == (
        f"database shop-test is busy with the SQL of order {first}; gave up after 0.5s: "
        "deploy again when it is done")
    assert lines == [f"waiting for order {first} to finish its SQL on shop-test"]
    assert world.executions(second) == []
    assert running.join()
    assert rows(world.runtime, SqlLock) == []


def test_a_runner_of_another_store_keeps_golive_out(world: SqlWorld, tmp_path: Path) -> None:
    """Another golive (its own store, e.g. another control machine) names the same
    database otherwise; while it runs SQL there, this golive waits for the database-side
    lock and gives up after its time limit, then runs once the other is done."""
    settings = get_settings()
    settings.home = tmp_path / "other-home"
    other_runtime = open_runtime(settings)
    try:
        other = SqlWorld(tmp_path / "other", other_runtime, world.backend, world.url)
        other.configure(databases={"orders-db": world.url},
                        stage_databases={s: "orders-db" for s in ("test", "staging", "prod")})
        statement = sleep_sql(world.backend, 3)
        running = Background(other, other.order(statement))
        wait_for("the other golive's statement running",
                 lambda: sessions_running(world.backend, world.url, statement))

        order_id = world.order("CREATE TABLE b (n INT);")
        lines: list[str] = []
        job = job_for(world, order_id, lines, lock_timeout=1)
        try:
            started = time.monotonic()
            with pytest.raises(DeployError) as caught:
                run_statements(job)
            assert 0.9 <= time.monotonic() - started < 4
        finally:
            job.target.close()
        assert caught.value.message == ("database shop-test is locked by another golive "
                                        "runner; gave up after 1s")
        assert lines == []  # this store's lock was free: no order of its own to wait for
        assert world.executions(order_id) == []
        assert rows(world.runtime, SqlLock) == []  # the store's lock row is given back
        assert running.join()
    finally:
        other_runtime.close()
    deployment = world.deploy_ok(order_id)
    assert world.sql_step(deployment.id).message == "1 ran, 0 already ran"


def test_a_lock_on_another_database_does_not_hold_golive_up(
        world: SqlWorld, backend: str, tmp_path: Path) -> None:
    """The lock is the database's, not golive's name for it: another database called
    shop-test by another golive (or a parallel test) is no obstacle."""
    with scratch_database(backend, tmp_path) as other_url:
        elsewhere = open_target("shop-test", other_url)
        try:
            assert elsewhere.lock(f"sql:{elsewhere.database}", 0)
            order_id = world.order("CREATE TABLE b (n INT);")
            job = job_for(world, order_id, [], lock_timeout=0.5)
            try:
                assert run_statements(job).ran == 1
            finally:
                job.target.close()
        finally:
            elsewhere.close()
    assert [e.status for e in world.executions(order_id)] == ["success"]
    assert rows(world.runtime, Deployment) == []
