"""The pipeline around the orders: the board of each project and the lanes of its
stages. (``golive scheduler`` is not an operation: it runs on the machine that holds the
data directory.)"""

from __future__ import annotations

from typing import Any

from golive.api.registry import Work, operation
from golive.api.schemas.pipeline import BoardView, LaneHoldView, LaneReleased
from golive.domain.permissions import Permission
from golive.services import lanes as lane_service
from golive.services import occupancy
from golive.services.users import get_project, require
from golive.store.models import LaneHold


@operation("board.show", "GET", "/board", list[BoardView])
def show_board(work: Work, project: str = "") -> list[occupancy.Board]:
    """Per project, stage and lane: which order and branch each service serves now, who
    holds each lane, and the open orders whose main branch moved. Without ``project``:
    every project the caller may read."""
    return occupancy.board(work.session, work.user, project)


def _hold(hold: LaneHold) -> dict[str, Any]:
    return {"stage": hold.stage, "lane": hold.lane, "order": hold.order_id,
            "held_by": hold.held_by, "since": hold.held_since}


@operation("lane.list", "GET", "/projects/{project}/lanes", list[LaneHoldView])
def list_lanes(work: Work, project: str) -> list[dict[str, Any]]:
    """The held lanes of a project's stages, by stage and lane."""
    found = get_project(work.session, project)
    require(work.session, work.user, found, Permission.VIEW, f"reading the lanes of {project}")
    return [_hold(h) for h in lane_service.list_holds(work.session, found.id)]


@operation("lane.release", "POST", "/projects/{project}/lanes/{stage}/{lane}/release",
           LaneReleased)
def release_lane(work: Work, project: str, stage: str, lane: str) -> dict[str, Any]:
    """Free a lane an order holds (tester or owner); the order is told in its history."""
    order_id = lane_service.release_lane(work.session, project, stage, lane, work.user)
    return {"project": project, "stage": stage, "lane": lane, "order": order_id}
