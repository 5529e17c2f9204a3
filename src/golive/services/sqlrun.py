"""Running an item's SQL on its target database, exactly once per database.

* A statement already ``success`` on the database for the order is skipped,
  whichever stage ran it; an ``unknown`` one stops the run until a person
  resolves it. The first failure stops the run; earlier successes stay recorded.
* Each execution is recorded ``running`` (with the process running it) in its own
  committed transaction before the statement is sent, and finished after: a
  process killed in between leaves ``running``, which the next start turns into
  ``unknown``. A connection lost while a statement ran is ``unknown`` too.
* One runner per database: a lock row in the store (it names the order holding
  it) and the database's own lock; a second runner waits, saying for which order,
  up to a time limit.
* On PostgreSQL an item's statements run in one transaction (unless the item
  says ``transactional: false``): they are ``running`` until COMMIT, then all
  ``success``; a failure rolls all of them back and records that.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from golive.adapters.sqltarget import SqlTarget, SqlUncertain
from golive.domain import messages
from golive.domain.sql import MYSQL, POSTGRESQL
from golive.errors import DeployError, SqlFailed
from golive.services import notify
from golive.services.ledger import FAILED, RUNNING, SUCCESS, UNKNOWN, sql_status
from golive.services.liveness import is_dead, this_runner
from golive.services.orders import get_order
from golive.services.work import StatementRef
from golive.store.models import LogLine, SqlExecution, SqlLock, utcnow

LOCK_TIMEOUT = 600.0


@dataclass
class SqlRun:
    ran: int = 0
    skipped: int = 0


@dataclass
class SqlJob:
    """One item's statements for one database, and who runs them where."""

    sessions: sessionmaker[Session]
    target: SqlTarget
    database_id: int
    order_id: int
    deployment_id: int
    stage: str
    service: str
    by: str
    statements: list[StatementRef]
    transactional: bool | None
    log: Callable[[str], None]
    lock_timeout: float = LOCK_TIMEOUT

    def ref(self, stmt: StatementRef) -> str:
        return f"{self.service}:{stmt.position + 1}"


def run_statements(job: SqlJob) -> SqlRun:
    """Run what the ledger has not seen succeed; SqlFailed / DeployError stop the run."""
    result = SqlRun()
    with job.sessions() as session:
        status = sql_status(session, job.database_id, job.order_id)
    pending = []
    for stmt in job.statements:
        state = status.get(stmt.checksum, "")
        if state in (UNKNOWN, RUNNING):
            raise DeployError(
                f"SQL {job.ref(stmt)} is {state} on database {job.target.name}: it may or may "
                f"not have run; resolve it with `golive sql resolve {job.order_id} "
                f"{job.ref(stmt)} --as executed|retry`")
        if state == SUCCESS:
            result.skipped += 1
        else:
            pending.append(stmt)
    if result.skipped:
        job.log(f"{result.skipped} statement(s) already ran on {job.target.name}: skipped")
    if not pending:
        return result
    try:
        job.target.connect()
    except SqlFailed as exc:  # name what did not run, as every SQL error does
        span = job.ref(pending[0]) + (f" to {job.ref(pending[-1])}" if len(pending) > 1 else "")
        exc.message = f"{exc.message}; SQL {span} not run"
        exc.args = (exc.message,)
        raise
    with _database_lock(job):
        if _in_one_transaction(job):
            _run_transaction(job, pending)
        else:
            for stmt in pending:
                _run_one(job, stmt)
    result.ran = len(pending)
    return result


def _in_one_transaction(job: SqlJob) -> bool:
    if job.target.dialect == MYSQL:
        if job.transactional:
            job.log("MySQL-family databases commit DDL on their own: the statements run "
                    "one by one")
        return False
    if job.transactional is None:
        return job.target.dialect == POSTGRESQL
    return job.transactional


def _begin(job: SqlJob, stmt: StatementRef) -> int:
    with job.sessions() as session:
        execution = SqlExecution(database_id=job.database_id, order_id=job.order_id,
                                 statement_id=stmt.id, checksum=stmt.checksum, stage=job.stage,
                                 status=RUNNING, executed_by=job.by, runner=this_runner())
        session.add(execution)
        session.commit()
        return execution.id


def _finish(job: SqlJob, execution_ids: list[int], status: str, *, rows: int | None = None,
            duration_ms: int | None = None, message: str = "", log_text: str = "") -> None:
    """Record the outcome; ``log_text`` goes to the deployment's log in the same commit
    (one commit less per statement: measured in bench/README.md)."""
    with job.sessions() as session:
        if log_text and job.deployment_id:
            session.add(LogLine(deployment_id=job.deployment_id, service=job.service,
                                text=log_text))
        elif log_text:
            job.log(log_text)  # no deployment record (a job run on its own)
        values: dict[str, object] = {"status": status, "finished_at": utcnow(),
                                     "message": message}
        if rows is not None:
            values["rows_affected"] = rows
        if duration_ms is not None:
            values["duration_ms"] = duration_ms
        session.execute(update(SqlExecution).where(SqlExecution.id.in_(execution_ids))
                        .values(**values))
        if status == UNKNOWN:  # releasers and owners must settle it: tell them now
            notify.emit(session, get_order(session, job.order_id), messages.STATEMENT_UNKNOWN,
                        actor=job.by, stage=job.stage, error=message)
        session.commit()


def _execute(job: SqlJob, stmt: StatementRef, execution_id: int) -> tuple[int, int]:
    """(rows, milliseconds); records failed / unknown before raising."""
    started = time.monotonic()
    try:
        rows = job.target.execute(stmt.text, f"statement #{stmt.position + 1}")
    except SqlUncertain as exc:
        _finish(job, [execution_id], UNKNOWN, message=exc.message,
                duration_ms=_ms(started))
        raise
    except SqlFailed as exc:
        _finish(job, [execution_id], FAILED, message=exc.message, duration_ms=_ms(started))
        raise
    return rows, _ms(started)


def _run_one(job: SqlJob, stmt: StatementRef) -> None:
    execution_id = _begin(job, stmt)
    rows, ms = _execute(job, stmt, execution_id)
    _finish(job, [execution_id], SUCCESS, rows=rows, duration_ms=ms,
            log_text=f"SQL {job.ref(stmt)} ran on {job.target.name} in {ms} ms, {rows} row(s)")


def _run_transaction(job: SqlJob, pending: list[StatementRef]) -> None:
    job.target.begin()
    done: list[tuple[int, int, int]] = []  # (execution id, rows, ms)
    for stmt in pending:
        execution_id = _begin(job, stmt)
        try:
            rows, ms = _execute(job, stmt, execution_id)
        except SqlFailed:
            job.target.rollback()
            if done:
                _finish(job, [d[0] for d in done], FAILED,
                        message=f"rolled back: SQL {job.ref(stmt)} failed in the same "
                                "transaction")
            raise
        done.append((execution_id, rows, ms))
    try:
        job.target.commit()
    except SqlUncertain as exc:
        _finish(job, [d[0] for d in done], UNKNOWN, message=exc.message)
        raise
    except SqlFailed as exc:
        _finish(job, [d[0] for d in done], FAILED, message=f"COMMIT failed: {exc.message}")
        raise
    for execution_id, rows, ms in done:
        _finish(job, [execution_id], SUCCESS, rows=rows, duration_ms=ms)
    job.log(f"{len(done)} statement(s) ran on {job.target.name} in one transaction")


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


@contextmanager
def _database_lock(job: SqlJob) -> Iterator[None]:
    """Hold the store's lock row for the database, then the database's own lock."""
    deadline = time.monotonic() + job.lock_timeout
    _take_store_lock(job, deadline)
    try:
        # the server's name of the database, not golive's: runners of other golive stores
        # (which may name it otherwise) are kept out too, other databases are not
        key = f"sql:{job.target.database or job.target.name}"
        if not job.target.lock(key, max(0.0, deadline - time.monotonic())):
            raise DeployError(f"database {job.target.name} is locked by another golive "
                              f"runner; gave up after {job.lock_timeout:g}s")
        try:
            yield
        finally:
            job.target.unlock(key)
    finally:
        with job.sessions() as session:
            session.execute(delete(SqlLock).where(
                SqlLock.database_id == job.database_id,
                SqlLock.deployment_id == job.deployment_id, SqlLock.runner == this_runner()))
            session.commit()


def _take_store_lock(job: SqlJob, deadline: float) -> None:
    announced = False
    while True:
        with job.sessions() as session:
            try:
                session.add(SqlLock(database_id=job.database_id, order_id=job.order_id,
                                    deployment_id=job.deployment_id, runner=this_runner()))
                session.commit()
                return
            except IntegrityError:
                session.rollback()
            holder = session.get(SqlLock, job.database_id)
            if holder is not None and is_dead(holder.runner):
                session.delete(holder)
                session.commit()
                continue
            holder_order = holder.order_id if holder is not None else "?"
        if not announced:
            job.log(f"waiting for order {holder_order} to finish its SQL on "
                    f"{job.target.name}")
            announced = True
        if time.monotonic() >= deadline:
            raise DeployError(f"database {job.target.name} is busy with the SQL of order "
                              f"{holder_order}; gave up after {job.lock_timeout:g}s: deploy "
                              "again when it is done")
        time.sleep(0.3)
