"""The ledgers: the commit per (order, service, stage) and each statement per database.

Running statements (and recording each execution) is ``sqlrun.py``; this module
reads and writes the ledger rows.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.domain.plan import LedgerEntry
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
