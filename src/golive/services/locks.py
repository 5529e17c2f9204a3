"""Deployment locks: one deployment at a time per (service, stage, lane).

A lock is a row of ``deploy_locks`` naming its holder (a deployment, its order) and
a heartbeat. Taking it is a compare-and-set on the row inside the transaction that
moves the order to deploying, after ``SELECT ... FOR UPDATE`` on PostgreSQL and
MariaDB, so two requests racing for it are serialized by the database and exactly
one wins; SQLite serializes writers itself. A lock is free when it names no
deployment, or when its holder is dead: the deployment ended, its process is gone
(``liveness``), or its heartbeat is older than ``STALE_AFTER`` (a runner on another
machine that stopped). The holder frees its locks in the transaction that ends the
deployment; ``recovery`` frees those of a process that died.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from golive.errors import Busy
from golive.services.liveness import is_dead
from golive.services.ticker import Ticker
from golive.store.models import DeployLock, Deployment, Order, utcnow

STALE_AFTER = timedelta(seconds=90)
HEARTBEAT_EVERY = 15.0
POLL_EVERY = 0.5
LIVE = ("pending", "running", "paused")


@dataclass(frozen=True, order=True)
class LockKey:
    service_id: int
    stage: str
    lane: str
    service: str = ""

    def describe(self) -> str:
        lane = f" (lane {self.lane})" if self.lane else ""
        return f"service {self.service or self.service_id} on {self.stage}{lane}"


def holder_alive(session: Session, lock: DeployLock, now: datetime | None = None) -> bool:
    """Whether the deployment the lock names still runs (or waits to run).

    The deployment is read with a locking read: on MariaDB (REPEATABLE READ) a plain read
    would see this transaction's older snapshot, where a deployment that a racing
    request just committed does not exist yet — and would take it for dead."""
    if lock.deployment_id is None:
        return False
    deployment = session.scalar(
        select(Deployment).where(Deployment.id == lock.deployment_id)
        .with_for_update(read=True).execution_options(populate_existing=True))
    if deployment is None or deployment.status not in LIVE or is_dead(deployment.runner):
        return False
    beat = lock.heartbeat_at
    return beat is None or (now or utcnow()) - beat <= STALE_AFTER


def _busy(session: Session, key: LockKey, lock: DeployLock) -> Busy:
    deployment = session.get(Deployment, lock.deployment_id)
    order = session.get(Order, lock.order_id) if lock.order_id else None
    since = f", since {lock.acquired_at:%H:%M:%S} UTC" if lock.acquired_at else ""
    who = f" by {deployment.requested_by}" if deployment else ""
    title = f" ({order.title})" if order else ""
    return Busy(f"{key.describe()} is being deployed by order {lock.order_id}{title}: "
                f"deployment {lock.deployment_id}{who}{since}; wait for it to end, or ask "
                "again with --wait SECONDS", order_id=lock.order_id)


def _ensure_rows(engine: Engine, keys: Iterable[LockKey]) -> None:
    """Make the lock rows that do not exist yet, each in its own short transaction
    (before the caller writes anything, so SQLite's single writer is not held)."""
    for key in keys:
        with Session(engine) as session:
            exists = session.scalar(select(DeployLock.id).where(*_match(key)))
            if exists is not None:
                continue
            session.add(DeployLock(service_id=key.service_id, stage=key.stage, lane=key.lane,
                                   runner=""))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()  # another request made it first: as good


def _match(key: LockKey) -> tuple[ColumnElement[bool], ...]:
    return (DeployLock.service_id == key.service_id, DeployLock.stage == key.stage,
            DeployLock.lane == key.lane)


def first_held(session: Session, keys: Iterable[LockKey]) -> tuple[LockKey, DeployLock] | None:
    """The first of ``keys`` whose lock a live deployment holds."""
    now = utcnow()
    for key in sorted(keys):
        lock = session.scalar(select(DeployLock).where(*_match(key)))
        if lock is not None and holder_alive(session, lock, now):
            return key, lock
    return None


def wait_until_free(engine: Engine, keys: list[LockKey], wait: float,
                    sleep: Callable[[float], None] = time.sleep) -> None:
    """Return once no live deployment holds any of ``keys``; after ``wait`` seconds,
    Busy naming the order that holds one."""
    _ensure_rows(engine, keys)
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        with Session(engine) as session:
            held = first_held(session, keys)
            if held is None:
                return
            if time.monotonic() >= deadline:
                raise _busy(session, *held)
        sleep(POLL_EVERY)


def acquire(session: Session, keys: list[LockKey], deployment: Deployment) -> None:
    """Take every lock of ``keys`` for ``deployment`` in the caller's transaction (in key
    order, so two deployments never wait for each other crosswise); Busy when one is held."""
    now = utcnow()
    for key in sorted(keys):
        lock = session.scalar(select(DeployLock).where(*_match(key)).with_for_update())
        if lock is None:
            raise Busy(f"{key.describe()}: its lock row is missing; ask again",
                       order_id=None)
        previous = lock.deployment_id
        if previous not in (None, deployment.id) and holder_alive(session, lock, now):
            raise _busy(session, key, lock)
        holder = (DeployLock.deployment_id.is_(None) if previous is None
                  else DeployLock.deployment_id == previous)
        taken = session.execute(
            update(DeployLock).where(DeployLock.id == lock.id, holder)
            .values(deployment_id=deployment.id, order_id=deployment.order_id,
                    runner=deployment.runner, acquired_at=now, heartbeat_at=now)
            .execution_options(synchronize_session=False))
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            session.expire(lock)
            raise _busy(session, key, session.get_one(DeployLock, lock.id))
    session.flush()


def release(session: Session, deployment_id: int) -> int:
    """Free the locks ``deployment_id`` holds (caller commits); how many."""
    freed = session.execute(
        update(DeployLock).where(DeployLock.deployment_id == deployment_id)
        .values(deployment_id=None, order_id=None, runner="", heartbeat_at=None)
        .execution_options(synchronize_session=False))
    return int(freed.rowcount)  # type: ignore[attr-defined]


def beat(session: Session, deployment_id: int, runner: str) -> None:
    session.execute(update(DeployLock).where(DeployLock.deployment_id == deployment_id)
                    .values(heartbeat_at=utcnow(), runner=runner)
                    .execution_options(synchronize_session=False))


def heartbeat(sessions: sessionmaker[Session], deployment_id: int, runner: str,
              every: float = HEARTBEAT_EVERY) -> Ticker:
    """While a deployment runs (``with heartbeat(...)``), its locks' heartbeat is renewed
    every ``every`` seconds, the first time at once."""

    def tick() -> None:
        with sessions() as session:
            beat(session, deployment_id, runner)
            session.commit()

    return Ticker(tick, every, f"heartbeat-{deployment_id}", at_start=True)
