"""An order's history: every transition (written by ``orders.transition``) and every
event that does not move the order — a deployment asked for or resumed, an SQL
approval, a lane taken over or released, an unverified release accepted."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from golive.store.models import Order, OrderHistory


def note(session: Session, order: Order, actor: str, action: str, reason: str) -> None:
    """Write an event that leaves the order's state as it is."""
    session.add(OrderHistory(order_id=order.id, actor=actor, action=action,
                             from_state=order.state, to_state=order.state, reason=reason))
    session.flush()


def history_of(session: Session, order_id: int) -> list[OrderHistory]:
    return list(session.scalars(select(OrderHistory).where(OrderHistory.order_id == order_id)
                                .order_by(OrderHistory.id)))
