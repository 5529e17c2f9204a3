"""Lanes of a stage: an order deploying on a stage with lanes holds one of them.

A lane is a name (``t1``) that a service's stage settings give a set of hosts. An
order takes a free lane (or the one asked for), and holds it until it moves on to
another stage, is done or cancelled, or a tester releases it. Deploying onto a
lane another order holds is refused naming that order, unless a tester or owner
takes it over; the take-over goes into both orders' history.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from golive.domain.permissions import Permission
from golive.domain.workflow import CANCELLED, DONE
from golive.errors import Busy, InputError, NotFound
from golive.services.history import note
from golive.services.users import get_project, require
from golive.store.models import LaneHold, Order, ServiceStage, User


def service_lanes(setting: ServiceStage | None) -> list[str]:
    if setting is None:
        return []
    return sorted({sh.lane for sh in setting.hosts if sh.kind == "deploy" and sh.lane})


def _setting(item_stages: list[ServiceStage], stage: str) -> ServiceStage | None:
    return next((s for s in item_stages if s.stage == stage), None)


def order_lanes(order: Order, stage: str) -> list[str]:
    """The lanes every one of the order's services with lanes on ``stage`` has (empty:
    none of them has lanes there)."""
    common: set[str] | None = None
    for item in order.items:
        lanes = service_lanes(_setting(list(item.service.stages), stage))
        if lanes:
            common = set(lanes) if common is None else common & set(lanes)
    if common is not None and not common:
        raise InputError(f"order {order.id}: its services have no lane in common on {stage}")
    return sorted(common or ())


def hold_of(session: Session, order_id: int, stage: str) -> LaneHold | None:
    return session.scalar(select(LaneHold).where(LaneHold.order_id == order_id,
                                                 LaneHold.stage == stage))


def _holds(session: Session, project_id: int, stage: str) -> dict[str, LaneHold]:
    rows = session.scalars(select(LaneHold).where(LaneHold.project_id == project_id,
                                                  LaneHold.stage == stage))
    return {row.lane: row for row in rows}


def preview_lane(session: Session, order: Order, stage: str, requested: str = "") -> str:
    """The lane a deploy would use, without taking it ("" when the stage has none)."""
    lanes = order_lanes(order, stage)
    if not lanes:
        return ""
    mine = hold_of(session, order.id, stage)
    if requested:
        return requested
    if mine is not None:
        return mine.lane
    holds = _holds(session, order.project_id, stage)
    return next((lane for lane in lanes if lane not in holds), lanes[0])


def _held_message(hold: LaneHold, stage: str) -> str:
    return (f"lane {hold.lane} of {stage} is held by order {hold.order_id} (since "
            f"{hold.held_since:%Y-%m-%d %H:%M} UTC, by {hold.held_by})")


def take_lane(session: Session, order: Order, stage: str, by: User, *, requested: str = "",
              take_over: bool = False) -> str:
    """The lane the order deploys on, now held by it ("" when the stage has no lanes).
    Busy when the lane asked for (or every lane) is held by another order."""
    lanes = order_lanes(order, stage)
    if not lanes:
        if requested:
            raise InputError(f"--lane {requested}: {stage} has no lanes for this order")
        return ""
    if requested and requested not in lanes:
        raise InputError(f"lane {requested} is not one of {stage}'s lanes: {', '.join(lanes)}")
    mine = hold_of(session, order.id, stage)
    if mine is not None:
        if requested and requested != mine.lane:
            raise InputError(f"order {order.id} holds lane {mine.lane} of {stage}; release "
                             f"it first (golive lane release) to move to {requested}")
        return mine.lane
    holds = _holds(session, order.project_id, stage)
    lane = requested or next((name for name in lanes if name not in holds), "")
    if not lane:
        taken = "; ".join(_held_message(holds[name], stage) for name in lanes)
        raise Busy(f"every lane of {stage} is held: {taken}; wait, ask a tester to release "
                   "one, or take one over with --lane LANE --take-over",
                   order_id=holds[lanes[0]].order_id)
    other = holds.get(lane)
    if other is not None:
        if not take_over:
            raise Busy(f"{_held_message(other, stage)}; pick another lane, wait, or take it "
                       "over with --take-over (tester or owner)", order_id=other.order_id)
        require(session, by, order.project, Permission.TAKE_OVER_LANE,
                f"taking over lane {lane} of {stage}")
        why = f"lane {lane} of {stage} taken over from order {other.order_id} by {by.name}"
        note(session, order, by.name, "take_over", why)
        loser = session.get_one(Order, other.order_id)
        note(session, loser, by.name, "lane_lost", f"{why} for order {order.id}")
        session.delete(other)
        session.flush()
    session.add(LaneHold(project_id=order.project_id, stage=stage, lane=lane,
                         order_id=order.id, held_by=by.name))
    try:
        session.flush()
    except IntegrityError:
        raise Busy(f"lane {lane} of {stage} was taken by another order just now; ask again",
                   order_id=None) from None
    return lane


def follow_state(session: Session, order_id: int, target: str) -> None:
    """Free the holds an order no longer needs once it moves to ``target``: all of them
    when it is done or cancelled, those of other stages when it deploys on a new one."""
    stage, _, phase = target.partition(":")
    query = delete(LaneHold).where(LaneHold.order_id == order_id)
    if target in (DONE, CANCELLED):
        session.execute(query)
    elif phase == "deploying":
        session.execute(query.where(LaneHold.stage != stage))


def release_lane(session: Session, project_name: str, stage: str, lane: str,
                 by: User) -> int:
    """A tester frees a lane; the order that held it (its number) is told in its history."""
    project = get_project(session, project_name)
    require(session, by, project, Permission.RELEASE_LANE, f"releasing lane {lane} of {stage}")
    hold = _holds(session, project.id, stage).get(lane)
    if hold is None:
        raise NotFound(f"held lane of {project.name}/{stage}", lane)
    order = session.get_one(Order, hold.order_id)
    note(session, order, by.name, "lane_released", f"lane {lane} of {stage} released by "
                                                   f"{by.name}")
    session.delete(hold)
    session.flush()
    return order.id


def list_holds(session: Session, project_id: int) -> list[LaneHold]:
    return list(session.scalars(select(LaneHold).where(LaneHold.project_id == project_id)
                                .order_by(LaneHold.stage, LaneHold.lane)))
