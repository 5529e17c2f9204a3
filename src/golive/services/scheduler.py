"""The scheduler: starts releases queued for a release window once it opens.

``start_due`` looks at queued deployments whose time has come and starts each as
the person who queued it (``requests.start_queued``: permission, window, staleness
guard and locks are checked again). One that cannot start now stays queued for the
next window when the window closed again, or ends ``failed`` with the reason in the
order's history (the order moved on, a lock is held, main moved).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.errors import GoliveError, OutsideWindow
from golive.services.history import note
from golive.services.orders import get_order
from golive.services.requests import start_queued
from golive.services.runtime import Runtime
from golive.store.models import Deployment, utcnow


@dataclass(frozen=True)
class Started:
    deployment_id: int
    order_id: int
    outcome: str  # started | requeued | failed
    message: str = ""


def due(runtime: Runtime, now: datetime) -> list[int]:
    with runtime.store.session() as session:
        return list(session.scalars(select(Deployment.id).where(
            Deployment.status == "queued", Deployment.not_before <= now)
            .order_by(Deployment.not_before, Deployment.id)))


def start_due(runtime: Runtime, now: datetime | None = None) -> list[Started]:
    """Start every queued release whose window has opened; what became of each."""
    moment = now or utcnow()
    return [_start_one(runtime, deployment_id, moment) for deployment_id in due(runtime, moment)]


def _start_one(runtime: Runtime, deployment_id: int, now: datetime) -> Started:
    with runtime.store.session() as session:
        deployment = session.get_one(Deployment, deployment_id)
        order_id = deployment.order_id
        try:
            start_queued(session, deployment, now)
            session.commit()
            return Started(deployment_id, order_id, "started")
        except OutsideWindow as exc:
            if not isinstance(exc.opens, datetime):
                return _failed(session, deployment_id, order_id, exc)
            session.rollback()
            queued = session.get_one(Deployment, deployment_id)
            queued.not_before = exc.opens
            session.commit()
            return Started(deployment_id, order_id, "requeued", exc.message)
        except GoliveError as exc:
            return _failed(session, deployment_id, order_id, exc)


def _failed(session: Session, deployment_id: int, order_id: int, exc: GoliveError) -> Started:
    session.rollback()
    failed = session.get_one(Deployment, deployment_id)
    failed.status, failed.error, failed.finished_at = "failed", exc.message, utcnow()
    note(session, get_order(session, order_id), "scheduler", "release_not_started",
         exc.message[:2000])
    session.commit()
    return Started(deployment_id, order_id, "failed", exc.message)
