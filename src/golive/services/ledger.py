"""The ledgers: the commit per (order, service, stage) and each statement per database.

SQL executions are written in their own committed transactions: a statement is
recorded ``running`` before it is sent and finished after, so a process killed
in between leaves a row that the next start turns into ``unknown``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from golive.adapters.sqltarget import SqlTarget
from golive.domain.plan import LedgerEntry
from golive.errors import DeployError, SqlFailed
from golive.services.work import StatementRef
from golive.store.models import CommitLedger, SqlExecution, utcnow

SUCCESS, FAILED, RUNNING, UNKNOWN = "success", "failed", "running", "unknown"


def sql_status(session: Session, database_id: int, order_id: int) -> dict[str, str]:
    """checksum → the ledger's verdict for this order on this database."""
    rows = session.execute(
        select(SqlExecution.checksum, SqlExecution.status).where(
            SqlExecution.database_id == database_id, SqlExecution.order_id == order_id)
    ).all()
    rank = {SUCCESS: 3, UNKNOWN: 2, RUNNING: 2, FAILED: 1}
    verdict: dict[str, str] = {}
    for checksum, status in rows:
        if rank.get(status, 0) > rank.get(verdict.get(checksum, ""), 0):
            verdict[checksum] = status
    return verdict


def commit_entry(session: Session, order_id: int, service_id: int, stage: str
                 ) -> LedgerEntry | None:
    row = session.scalar(select(CommitLedger).where(
        CommitLedger.order_id == order_id, CommitLedger.service_id == service_id,
        CommitLedger.stage == stage))
    if row is None:
        return None
    return LedgerEntry(row.branch_commit, row.main_commit, row.deployed_commit, row.release_id)


def record_commit(session: Session, order_id: int, service_id: int, stage: str,
                  entry: LedgerEntry, deployment_id: int) -> None:
    row = session.scalar(select(CommitLedger).where(
        CommitLedger.order_id == order_id, CommitLedger.service_id == service_id,
        CommitLedger.stage == stage))
    if row is None:
        row = CommitLedger(order_id=order_id, service_id=service_id, stage=stage)
        session.add(row)
    row.branch_commit, row.main_commit = entry.branch_commit, entry.main_commit
    row.deployed_commit, row.release_id = entry.deployed_commit, entry.release_id
    row.deployment_id, row.recorded_at = deployment_id, utcnow()
    session.flush()


def mark_interrupted(session: Session) -> int:
    """Statements left ``running`` by a process that died become ``unknown``."""
    result = session.execute(update(SqlExecution).where(SqlExecution.status == RUNNING)
                             .values(status=UNKNOWN, message="interrupted: golive stopped "
                                     "while the statement ran; resolve it by hand"))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass
class SqlRun:
    ran: int = 0
    skipped: int = 0


def run_statements(
    sessions: sessionmaker[Session], target: SqlTarget, database_id: int, order_id: int,
    stage: str, by: str, statements: list[StatementRef], log: Callable[[str], None],
) -> SqlRun:
    """Run each statement not yet ``success`` on this database for this order, in order.

    The first failure stops the run (SqlFailed); earlier successes stay recorded.
    """
    result = SqlRun()
    with sessions() as session:
        status = sql_status(session, database_id, order_id)
    for stmt in statements:
        state = status.get(stmt.checksum, "")
        if state == SUCCESS:
            result.skipped += 1
            log(f"SQL #{stmt.position + 1} already ran on {target.name}: skipped")
            continue
        if state in (UNKNOWN, RUNNING):
            raise DeployError(f"SQL #{stmt.position + 1} is {state} on {target.name}: resolve "
                              f"it with `golive sql resolve {order_id} {stmt.position + 1}`")
        _run_one(sessions, target, database_id, order_id, stage, by, stmt, log)
        result.ran += 1
    return result


def _run_one(
    sessions: sessionmaker[Session], target: SqlTarget, database_id: int, order_id: int,
    stage: str, by: str, stmt: StatementRef, log: Callable[[str], None],
) -> None:
    with sessions() as session:
        execution = SqlExecution(database_id=database_id, order_id=order_id,
                                 statement_id=stmt.id, checksum=stmt.checksum, stage=stage,
                                 status=RUNNING, executed_by=by)
        session.add(execution)
        session.commit()
        execution_id = execution.id
    started = time.monotonic()
    rows: int | None = None
    error: SqlFailed | None = None
    try:
        rows = target.execute(stmt.text)
    except SqlFailed as exc:
        error = exc
    duration = int((time.monotonic() - started) * 1000)
    with sessions() as session:
        row = session.get_one(SqlExecution, execution_id)
        row.status = FAILED if error else SUCCESS
        row.finished_at, row.duration_ms, row.rows_affected = utcnow(), duration, rows
        row.message = error.message if error else ""
        session.commit()
    if error:
        raise error
    log(f"SQL #{stmt.position + 1} ran on {target.name} in {duration} ms, {rows} row(s)")
