"""Orders: file, list, show, history, and the transitions a person takes by hand."""

from __future__ import annotations

from typing import Any

from golive.api.registry import Work, operation
from golive.api.schemas.orders import (
    HistoryEntry,
    Moved,
    NewOrder,
    OrderDetail,
    OrderSummary,
    Reason,
    RequiredReason,
)
from golive.domain.jobs import parse_jobs
from golive.domain.workflow import Action
from golive.errors import InputError
from golive.services import orders as order_service
from golive.services import promote
from golive.store.models import Order


def summary(order: Order) -> dict[str, Any]:
    return {"id": order.id, "project": order.project.name, "title": order.title,
            "state": order.state, "created_by": order.created_by.name,
            "created_at": order.created_at, "updated_at": order.updated_at,
            "services": [f"{i.service.name}@{i.branch}" for i in order.items]}


def history(order: Order) -> list[dict[str, Any]]:
    return [{"at": h.at, "actor": h.actor, "action": h.action, "from": h.from_state,
             "to": h.to_state, "reason": h.reason} for h in order.history]


def detail(order: Order) -> dict[str, Any]:
    return {**summary(order), "history": history(order), "items": [
        {"service": item.service.name, "branch": item.branch,
         "statements": [{"position": s.position, "checksum": s.checksum, "text": s.text}
                        for s in item.statements],
         "jobs": [{"name": j.name, "kind": j.kind, "spec": j.spec} for j in item.jobs]}
        for item in order.items]}


@operation("order.create", "POST", "/orders", OrderDetail, status=201)
def create(work: Work, body: NewOrder) -> dict[str, Any]:
    """File a new draft order (a developer or owner of the project)."""
    items = []
    for index, item in enumerate(body.items):
        try:
            # one by one: a name given twice is the service's rule (create_order says so)
            jobs = tuple(parse_jobs([job], f"items.{index}.jobs.{k}")[0]
                         for k, job in enumerate(item.jobs))
        except ValueError as exc:
            raise InputError(str(exc)) from None
        items.append(order_service.ItemRequest(item.service, item.branch, item.sql,
                                               item.transaction, jobs))
    order = order_service.create_order(work.session, work.user, body.project, items,
                                       body.title)
    return detail(order)


@operation("order.list", "GET", "/orders", list[OrderSummary])
def list_(work: Work, project: str = "", state: str = "", limit: int = 100
          ) -> list[order_service.OrderRow]:
    """The newest ``limit`` (1 to 1000) orders the caller may read, oldest first; filtered
    by project and state."""
    if not 1 <= limit <= 1000:
        raise InputError(f"limit must be between 1 and 1000, not {limit}")
    return order_service.list_orders(work.session, project=project or None,
                                     state=state or None, by=work.user, limit=limit)


@operation("order.show", "GET", "/orders/{number}", OrderDetail)
def show(work: Work, number: int) -> dict[str, Any]:
    """One order: its items, statements, jobs and history."""
    return detail(order_service.readable_order(work.session, number, work.user))


@operation("order.history", "GET", "/orders/{number}/history", list[HistoryEntry])
def order_history(work: Work, number: int) -> list[dict[str, Any]]:
    """Every transition, deployment, approval and take-over of the order, oldest first."""
    return history(order_service.readable_order(work.session, number, work.user))


def _move(work: Work, number: int, action: Action, reason: str = "") -> dict[str, Any]:
    order = order_service.transition(work.session, number, action, work.user, reason=reason)
    return {"order": number, "action": action.value, "state": order.state}


@operation("order.submit", "POST", "/orders/{number}/submit", Moved)
def submit(work: Work, number: int) -> dict[str, Any]:
    """Submit a draft order."""
    return _move(work, number, Action.SUBMIT)


@operation("order.reject", "POST", "/orders/{number}/reject", Moved)
def reject(work: Work, number: int, body: RequiredReason) -> dict[str, Any]:
    """Reject the stage the order is deployed on, with a reason (tester)."""
    return _move(work, number, Action.REJECT, body.reason)


@operation("order.cancel", "POST", "/orders/{number}/cancel", Moved)
def cancel(work: Work, number: int, body: Reason) -> dict[str, Any]:
    """Cancel an order that is not done."""
    return _move(work, number, Action.CANCEL, body.reason)


@operation("order.pass", "POST", "/orders/{number}/pass", Moved)
def pass_(work: Work, number: int) -> dict[str, Any]:
    """Pass the stage the order is deployed on (tester). With the project's auto_promote
    the deploy on the next stage starts at once (``deployment``)."""
    moved = _move(work, number, Action.PASS)
    work.session.commit()  # the pass stands even if the promotion is refused
    promotion = promote.after_pass(work.session, number, work.user)
    started = promotion.deployment
    if started is not None and started.status != "queued":
        work.start(started.id)
    return {**moved, "message": promotion.message,
            "deployment": started.id if started is not None else None,
            "deployment_queued": started is not None and started.status == "queued"}
