"""The dashboard, and what the order page needs beyond the order: the actions the caller
may take on it now and the releases a rollback can go back to. Each is decided by the
same rules the services enforce (``services/duties.py``, ``domain/offers.py``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from golive.api.operations.orders import summary
from golive.api.registry import Work, operation
from golive.api.schemas.dashboard import DashboardView, KeptReleaseView, OfferView
from golive.errors import InputError
from golive.services import duties, occupancy
from golive.services.orders import readable_order
from golive.services.requests import natural_stage


@operation("dashboard.show", "GET", "/dashboard", DashboardView)
def show(work: Work) -> dict[str, Any]:
    """The orders waiting for the caller (by their roles), their own orders, the recent
    deployments of the projects they read, and the board of those projects."""
    session, me = work.session, work.user
    return {
        "waiting": [{**summary(w.order), "duties": w.duties}
                    for w in duties.waiting_for(session, me)],
        "mine": [summary(order) for order in duties.my_orders(session, me)],
        "deployments": [
            {"id": d.id, "order": o.id, "title": o.title, "project": o.project.name,
             "stage": d.stage, "kind": d.kind, "action": d.action, "status": d.status,
             "requested_by": d.requested_by, "created_at": d.created_at,
             "finished_at": d.finished_at, "error": d.error}
            for d, o in duties.recent_deployments(session, me)],
        "board": occupancy.board(session, me),
    }


@operation("order.actions", "GET", "/orders/{number}/actions", list[OfferView])
def actions(work: Work, number: int) -> list[dict[str, Any]]:
    """What the caller may do with the order now, by their roles and its state."""
    order = readable_order(work.session, number, work.user)
    return [asdict(offer) for offer in duties.offers_for(work.session, order, work.user)]


@operation("order.releases", "GET", "/orders/{number}/releases", list[KeptReleaseView])
def releases(work: Work, number: int, stage: str = "") -> list[dict[str, Any]]:
    """The releases a rollback of the order on ``stage`` (default: the one it is on) can
    go back to, newest first, as the store recorded them."""
    order = readable_order(work.session, number, work.user)
    stages = list(order.project.stages)
    on, _, _phase = order.state.partition(":")
    target = stage or (stages[-1] if order.state == "done" else on if on in stages
                       else natural_stage(order))
    if target not in stages:
        raise InputError(f"stage {target!r} is not one of {order.project.name}'s stages: "
                         f"{', '.join(stages)}")
    return [asdict(k) for k in duties.kept_releases(work.session, order, target)]
